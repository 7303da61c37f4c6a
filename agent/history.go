package agent

import (
	"context"

	"agentd"
)

// HistoryStore is what History needs from storage.
type HistoryStore interface {
	RecentChats(ctx context.Context, userID int64, limit int) ([]RecentChat, error)
	Handled(ctx context.Context, userID int64, interactionID string) (bool, error)
	WrapInfo(ctx context.Context, interactionID string) (disposition, notes string, err error)
	SurveyAnswers(ctx context.Context, interactionID string) (map[string]string, bool, error)
	ServiceStrategy(ctx context.Context, serviceID int64) (Strategy, error)
}

// History is what the agent side reads about finished chats: an agent's recent chats, who may
// read a chat's history, its wrap-up and its survey answers.
type History struct{ store HistoryStore }

// NewHistory returns the history service.
func NewHistory(store HistoryStore) *History { return &History{store: store} }

// RecentChats returns the chats the agent finished most recently.
func (h *History) RecentChats(ctx context.Context, u User) ([]RecentChat, error) {
	return h.store.RecentChats(ctx, u.ID, 20)
}

// CanRead reports whether u may read an interaction's history: supervisors and admins always,
// agents for the chats they handled.
func (h *History) CanRead(ctx context.Context, u User, interactionID string) error {
	if u.Role.AtLeast(RoleSupervisor) {
		return nil
	}
	ok, err := h.store.Handled(ctx, u.ID, interactionID)
	if err != nil {
		return err
	}
	if !ok {
		return agentd.Errorf(agentd.EFORBIDDEN, "not_your_chat", "This chat is not one of yours.")
	}
	return nil
}

// WrapInfo returns an interaction's disposition and notes.
func (h *History) WrapInfo(ctx context.Context, interactionID string) (string, string, error) {
	return h.store.WrapInfo(ctx, interactionID)
}

// SurveyAnswers returns the survey answers of a chat, if it has any.
func (h *History) SurveyAnswers(ctx context.Context, interactionID string) (map[string]string, bool, error) {
	return h.store.SurveyAnswers(ctx, interactionID)
}

// Strategy returns a service's strategy (the survey's question labels).
func (h *History) Strategy(ctx context.Context, serviceID int64) (Strategy, error) {
	return h.store.ServiceStrategy(ctx, serviceID)
}
