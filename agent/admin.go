package agent

import (
	"context"
	"encoding/json"
	"time"
)

// ServiceInfo is a chat service (queue) as the agent side and the admin pages see it.
type ServiceInfo struct {
	ID          int64
	Name        string
	DisplayName string
	Enabled     bool
	Strategy    json.RawMessage
	CreatedAt   time.Time
}

// CannedResponse is a prepared answer agents can insert into the composer.
type CannedResponse struct {
	ID        int64
	ServiceID int64 // 0: every service
	Service   string
	Title     string
	Body      string
	UpdatedAt time.Time
}

// AdminStore is what administration needs from storage beyond Store.
type AdminStore interface {
	Services(ctx context.Context) ([]ServiceInfo, error)
	CannedResponses(ctx context.Context, serviceID int64, query string, limit int) ([]CannedResponse, error)
	SaveCannedResponse(ctx context.Context, userID int64, c CannedResponse) (int64, error)
	DeleteCannedResponse(ctx context.Context, userID, id int64) error
	UpdateUser(ctx context.Context, u User, passwordHash string) error
	Audit(ctx context.Context, userID int64, action, target string, details any) error
}

// Admin is the administration API behind /admin: services and their strategies, canned
// responses, users. Every change is audited.
type Admin struct {
	store  AdminStore
	agents *Service
}

// NewAdmin returns the administration API.
func NewAdmin(store AdminStore, agents *Service) *Admin {
	return &Admin{store: store, agents: agents}
}
