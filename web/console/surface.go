// Package console is the agent's surface: the console page, the history page of a chat, and the
// console socket (/ws/console). The server renders every change as templ fragments ("ops") that
// the page's console.js applies; the socket carries the agent's commands the other way. It runs
// on the web core's connection and hub, and calls the agent side through the interfaces below.
package console

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/labstack/echo/v4"

	"agentd/agent"
	"agentd/chat"
	"agentd/userdata"
	"agentd/web"
)

// Desk is what the console needs from the agent's work on chats (agent.Service).
type Desk interface {
	SetState(ctx context.Context, u agent.User, state agent.State, reason string) (agent.User, error)
	Heartbeat(ctx context.Context, u agent.User) error
	Assignments(ctx context.Context, u agent.User) ([]agent.Assignment, error)
	Assignment(ctx context.Context, u agent.User, interactionID string) (agent.Assignment, error)
	QueueCounts(ctx context.Context, u agent.User) (map[string]int, error)
	Strategy(ctx context.Context, serviceID int64) (agent.Strategy, error)
	Services(ctx context.Context) ([]agent.ServiceInfo, error)
	TransferAgents(ctx context.Context, u agent.User, service string) ([]agent.User, error)
	CoBrowseURL(u agent.User, sessionID, interactionID string) string
	Accept(ctx context.Context, u agent.User, interactionID string) (chat.Party, error)
	PickUp(ctx context.Context, u agent.User, service string) (string, error)
	Decline(ctx context.Context, u agent.User, interactionID string) error
	Send(ctx context.Context, u agent.User, interactionID, commandID, text string) (chat.Event, error)
	Typing(ctx context.Context, u agent.User, interactionID string, on bool, text string) error
	ChangeUserData(ctx context.Context, u agent.User, interactionID, commandID string, changes []userdata.Change) error
	SendNotice(ctx context.Context, u agent.User, interactionID, commandID string, payload json.RawMessage) (chat.Notice, error)
	CoBrowseJoined(ctx context.Context, u agent.User, interactionID, sessionID string) error
	Transfer(ctx context.Context, u agent.User, interactionID string, target agent.TransferTarget) error
	End(ctx context.Context, u agent.User, interactionID string) error
	WrapUp(ctx context.Context, u agent.User, interactionID, disposition, notes string) error
	CannedResponses(ctx context.Context, serviceID int64, query string) ([]agent.CannedResponse, error)
}

// Accounts is what the console needs from the accounts service: the agent, freshly read, and
// the browser session the console was opened with (checked while it is open, extended by its
// heartbeat).
type Accounts interface {
	User(ctx context.Context, id int64) (agent.User, error)
	SessionAlive(ctx context.Context, token string) error
	WebSession(ctx context.Context, token string) (agent.User, string, error)
}

// History is what the console reads of finished chats.
type History interface {
	RecentChats(ctx context.Context, u agent.User) ([]agent.RecentChat, error)
	CanRead(ctx context.Context, u agent.User, interactionID string) error
	WrapInfo(ctx context.Context, interactionID string) (string, string, error)
	SurveyAnswers(ctx context.Context, interactionID string) (map[string]string, bool, error)
	Strategy(ctx context.Context, serviceID int64) (agent.Strategy, error)
}

// Chat is what the console reads from the chat core.
type Chat interface {
	Interaction(ctx context.Context, interactionID string) (chat.Interaction, error)
	Transcript(ctx context.Context, interactionID string, fromIndex, limit int) ([]chat.Event, error)
	WholeTranscript(ctx context.Context, interactionID string) ([]chat.Event, error)
	SideItems(ctx context.Context, interactionID string, fromSeq int64, limit int) ([]chat.SideItem, error)
	UserData(ctx context.Context, interactionID string) ([]userdata.Entry, error)
	UserDataHistory(ctx context.Context, interactionID string) ([]userdata.HistoryEntry, error)
}

// Deps is what the console is built from.
type Deps struct {
	Desk     Desk
	Accounts Accounts
	History  History
	Chat     Chat
	Auth     *web.Auth
	Sockets  *web.Sockets
	Metrics  *web.Metrics // may be nil
	Logger   *slog.Logger
	// Monitors names who monitors each chat (the "Monitored by" line); may be nil.
	Monitors Monitors
	// WriteWait bounds every write to a console socket (10 s when 0; tests shorten it).
	WriteWait time.Duration
}

// Surface serves /console, /console/history/{id} and /ws/console.
type Surface struct {
	desk      Desk
	accounts  Accounts
	history   History
	chat      Chat
	auth      *web.Auth
	sockets   *web.Sockets
	hub       *web.Hub
	metrics   *web.Metrics
	logger    *slog.Logger
	writeWait time.Duration
	monitors  Monitors
}

// New returns the console surface.
func New(d Deps) *Surface {
	return &Surface{desk: d.Desk, accounts: d.Accounts, history: d.History, chat: d.Chat, auth: d.Auth,
		sockets: d.Sockets, hub: d.Sockets.Hub(), metrics: d.Metrics, logger: d.Logger, writeWait: d.WriteWait, monitors: d.Monitors}
}

// Register adds the console's routes, for signed-in agents (and up). The check is on each route,
// not on a group: an Echo group's middleware also runs for every unknown URL under its prefix,
// and with the prefix "" that would answer every unknown URL of the site with "sign in".
func (s *Surface) Register(e *echo.Echo) {
	agents := s.auth.Require(agent.RoleAgent)
	e.GET("/console", s.handleConsole, agents)
	e.GET("/console/history/:id", s.handleHistory, agents)
	e.GET("/ws/console", s.handleSocket, agents)
}
