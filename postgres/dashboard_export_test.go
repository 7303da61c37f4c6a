package postgres

// DashboardStatements exposes the dashboard's statements to dashboard_test.go (package
// postgres_test, which pgtest's import of postgres keeps outside this package).
var DashboardStatements = map[string]string{
	"Queues": queuesSQL, "Agents": agentsSQL, "LiveChats": liveChatsSQL, "Trend": trendSQL, "Dispositions": dispositionsSQL,
}

// LiveChatLimit is liveChatLimit, for the same test.
const LiveChatLimit = liveChatLimit
