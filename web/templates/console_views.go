package templates

// View models of the agent console. Handlers fill them from the domain; the components below only
// render them, so every string reaching the page passes through templ's escaping.

// ConsoleData is everything the console page shows when it loads.
type ConsoleData struct {
	Presence PresenceView
	Queues   []QueueCount
	Offers   []OfferView
	Chats    []ChatItem
	Panels   []ChatPanelView
	Recent   []RecentItem
}

// PresenceView is the agent's presence switch.
type PresenceView struct {
	State   string // offline, ready, not_ready
	Reason  string
	Reasons []string
}

// QueueCount is the number of chats waiting in one of the agent's services.
type QueueCount struct {
	Service string
	Waiting int
}

// OfferView is a chat offered to the agent.
type OfferView struct {
	InteractionID string
	Customer      string
	Service       string
	Subject       string
	ExpiresAtMs   int64
}

// ChatItem is an entry of the active chats list.
type ChatItem struct {
	InteractionID  string
	Customer       string
	Service        string
	Ended          bool
	PendingSinceMs int64 // when the customer's unanswered message arrived; 0 when none
	WarnSeconds    int
	LateSeconds    int
}

// ChatPanelView is the work area of one chat.
type ChatPanelView struct {
	InteractionID string
	Customer      string
	Service       string
	Subject       string
	Ended         bool // the chat has ended: read-only until wrapped up
	Actions       ActionsView
	UserData      UserDataView
	CoBrowse      CoBrowseView
}

// EventView is one transcript entry.
type EventView struct {
	Index       int
	Kind        string
	PartyType   string
	PartyName   string
	Text        string
	ContentType string
	Reason      string
	Time        string
	AtMs        int64
}

// UserDataView is the UserData table of a chat.
type UserDataView struct {
	InteractionID string
	Rows          []UserDataRow
}

// UserDataRow is one key.
type UserDataRow struct {
	Key      string
	Value    string
	Owner    string
	Visible  bool
	Editable bool
}

// NoticeView is a received or sent custom notice.
type NoticeView struct {
	Seq  int64
	From string
	Text string // a sentence for the notices agentd knows, else the payload as compact JSON
	Raw  bool   // Text is JSON
	Full string // the whole JSON when Text is cut short; "" when Text is all of it
	Time string
}

// CoBrowseView is the co-browse panel.
type CoBrowseView struct {
	InteractionID string
	SessionID     string
	URL           string // empty when no provider is configured
	Open          bool
	Ended         bool // the chat has ended: the session is shown as closed
}

// ActionsView holds End/Transfer while the chat is live and the wrap-up form after it ended.
type ActionsView struct {
	InteractionID       string
	Ended               bool
	Services            []string
	Agents              []AgentOption
	Dispositions        []string
	DispositionRequired bool
}

// AgentOption is a transfer target.
type AgentOption struct {
	ID   int64
	Name string
}

// RecentItem is a chat the agent finished, in the history list.
type RecentItem struct {
	InteractionID string
	Customer      string
	Ended         string
	Disposition   string
	CSAT          string
}

// HistoryView is the read-only page of a finished chat.
type HistoryView struct {
	InteractionID string
	Customer      string
	Service       string
	State         string // in words ("Wrapped up", "Ended by the customer, waiting for wrap-up", …)
	Date          string // when the chat started
	Duration      string // from start to end ("ongoing" while it is not over)
	Agents        []string
	Disposition   string
	Notes         string
	Events        []EventView
	UserData      []UserDataRow
	Changes       []ChangeRow
	Survey        []SurveyAnswer
}

// ChangeRow is one UserData history entry.
type ChangeRow struct {
	Time, Key, Op, Old, New, Owner, Actor string
}

// SurveyAnswer is one answer of the after-chat survey.
type SurveyAnswer struct {
	Question, Answer string
}
