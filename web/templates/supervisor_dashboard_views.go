package templates

// View models of the supervisors' live dashboard on /supervisor (web/supervisor/dashboard.go and
// charts.go fill them). Times that tick in the page carry their start as an RFC 3339 data
// attribute next to the text rendered from it, which supervisor.js updates every second.

// Dashboard is the live part of /supervisor: queues, agents, live chats and the charts.
type Dashboard struct {
	Queues []DashQueue
	Agents []DashAgent
	Live   []DashLive
	Charts []DashWindow
}

// DashTicker is a time that counts up in the page: Since (RFC 3339) and the text at render time.
// AlarmAfter, when set, is the number of seconds after which the time is overdue.
type DashTicker struct {
	Since, Text string
	AlarmAfter  int
	Alarm       bool
}

// DashQueue is one service's row of "Queues".
type DashQueue struct {
	Service                             string
	Waiting, Offered, Active, Abandoned int
	Longest                             *DashTicker // nil when nothing waits
}

// DashAgent is one row of "Agents".
type DashAgent struct {
	ID             int64
	Name, Username string
	State          string // "Ready", "Not ready: <reason>", "Offline"
	StateKey       string // ready, not_ready, offline
	Load, Capacity int
	InState        DashTicker
}

// DashLive is one row of "Live chats".
type DashLive struct {
	ID, Customer, Service, Agents string
	Duration                      DashTicker
	Pending                       *DashTicker // nil when no customer message waits for an answer
}

// DashWindow is one chart window: the last 24 hours by hour, or the last 7 days by day.
type DashWindow struct {
	ID, Title, PeriodLabel string // "day", "Last 24 hours", "Hour"
	Charts                 []Chart
	Rows                   []DashFigureRow
	Dispositions           Chart
	DispositionRows        []DashDispositionRow
}

// DashFigureRow is one period of a window's table alternative: the same numbers as its charts.
type DashFigureRow struct {
	Period                                            string
	Chats, Answered, Abandoned                        string
	Abandonment, AvgWait, P90Wait, AvgHandle, AvgCSAT string
}

// DashDispositionRow is one disposition of a window's table alternative.
type DashDispositionRow struct {
	Disposition, Count string
}

// Chart is a server-rendered SVG bar chart: every bar carries its value as text, so it reads
// without colour; Title and Desc name it (aria-labelledby).
type Chart struct {
	ID, Title, Desc string
	Width, Height   int
	BaseY           int // the y of the axis line
	Bars            []ChartBar
	Ticks           []ChartTick // labels under the axis
	Empty           string      // shown instead of bars when there is no data
}

// ChartBar is one bar: its rectangle, and its value label above it ("" for a period without
// data, which has no bar either).
type ChartBar struct {
	X, Y, W, H     int
	Value          string
	ValueX, ValueY int
}

// ChartTick is a label under the axis.
type ChartTick struct {
	X, Y int
	Text string
}
