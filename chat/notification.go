package chat

// NotificationKind says what changed.
type NotificationKind string

// Notification kinds.
const (
	NotifyEvents NotificationKind = "events" // transcript events up to Index were committed
	NotifySide   NotificationKind = "side"   // notices / UserData changes up to Seq were committed
	NotifyTyping NotificationKind = "typing" // ephemeral typing, carried in full
	NotifyQueue  NotificationKind = "queue"  // the queue of ServiceID changed
	NotifyAgent  NotificationKind = "agent"  // the presence, offers or chats of agent UserID changed
)

// Notification tells subscribers of an interaction (or of a service's queue) that something
// happened. It is deliberately small: subscribers that are behind read what they missed from
// Postgres, the source of truth, so a lost notification delays delivery but never loses data.
type Notification struct {
	Kind          NotificationKind
	InteractionID string
	ServiceID     int64
	UserID        int64 // NotifyAgent: the agent concerned
	Index         int   // NotifyEvents: the highest index committed
	Seq           int64 // NotifySide: the highest seq committed
	// Events, when set, are the committed events themselves, so local subscribers need not read
	// them back. Only local delivery carries them; NOTIFY payloads never do.
	Events []Event
	Typing *Typing
}
