package postgres_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"agentd"
	"agentd/chat"
	"agentd/postgres"
	"agentd/postgres/pgtest"
	"agentd/userdata"
)

// TestStartRetryClosedInCommand: a customer's message, UserData change or notice closes the
// start retry in its own group commit (no CloseStartRetry of its own): the start sent again with
// the same token is refused afterwards. An agent's command, or a customer command that failed,
// leaves the retry open, and the retry then finds the session again.
func TestStartRetryClosedInCommand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := postgres.NewChatStore(postgres.NewCommitter(openTestDB(t, pgtest.NewDatabase(t)), "n1", nil))

	start := func(token []byte) (chat.StartResult, error) {
		return s.StartInteraction(ctx, chat.StartRequest{ServiceName: "default", CustomerName: "c",
			SecureKeyHash: randomBytes(), StartTokenHash: token, RetryWindow: time.Minute, At: time.Now()})
	}
	check := func(name string, closes bool, use func(iid string, customer chat.Party) error, ok bool) {
		t.Helper()
		token := randomBytes()
		first, err := start(token)
		if err != nil {
			t.Fatal(err)
		}
		iid := first.Interaction.ID
		if err := use(iid, first.Party); (err == nil) != ok {
			t.Fatalf("%s: %v, want ok=%v", name, err, ok)
		}
		again, err := start(token)
		switch {
		case closes && agentd.ErrorCode(err) != "invalid_argument":
			t.Fatalf("%s: the start sent again: %v %v, want invalid_argument", name, again.Interaction.ID, err)
		case !closes && (err != nil || again.Interaction.ID != iid || !again.Retried):
			t.Fatalf("%s: the start sent again: %v %v, want the same session", name, again.Interaction.ID, err)
		}
	}
	message := func(iid string, p chat.Party) error {
		_, err := s.AppendMessage(ctx, chat.MessageRequest{InteractionID: iid, PartyID: p.ID, CommandID: "m1", Text: "hi", ContentType: chat.ContentText})
		return err
	}
	check("customer message", true, message, true)
	check("customer UserData", true, func(iid string, p chat.Party) error {
		_, err := s.ChangeUserData(ctx, chat.UserDataRequest{InteractionID: iid, PartyID: p.ID, CommandID: "u1",
			Actor: userdata.OwnerClient, ActorName: "c", Changes: []userdata.Change{{Key: "K", Value: "v"}}, Limits: userdata.DefaultLimits})
		return err
	}, true)
	check("customer notice", true, func(iid string, p chat.Party) error {
		_, err := s.AddNotice(ctx, chat.NoticeRequest{InteractionID: iid, PartyID: p.ID, CommandID: "n1", Payload: json.RawMessage(`{"x":1}`)})
		return err
	}, true)
	check("agent message", false, func(iid string, _ chat.Party) error {
		a, _, err := s.JoinParty(ctx, chat.JoinRequest{InteractionID: iid, Type: chat.PartyAgent, Name: "Ann", UserRef: "u-1"})
		if err != nil {
			return err
		}
		return message(iid, a)
	}, true)
	check("failed customer message", false, func(iid string, p chat.Party) error {
		if _, err := s.LeaveParty(ctx, chat.LeaveRequest{InteractionID: iid, PartyID: p.ID, CommandID: "bye", At: time.Now()}); err != nil {
			return err
		}
		return message(iid, p) // the customer left: forbidden, rolled back
	}, false)
}
