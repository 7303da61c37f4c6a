package templates

import (
	"strconv"

	"github.com/a-h/templ"
)

// View models of the admin pages (admin*.templ). Forms keep the text the admin typed, so a form
// shown again with errors loses nothing; Errors maps a field name to its message.

// AdminFrame is what every admin page shows around its content.
type AdminFrame struct {
	Title   string
	Section string // services, canned, users, audit; "" for the overview
	Flash   string // confirmation after a redirect, e.g. "Saved."
}

// AdminOverview is the /admin start page.
type AdminOverview struct {
	Services int
	Users    int
	Canned   int
	Recent   []AdminAuditRow
}

// AdminServiceRow is a service in the list.
type AdminServiceRow struct {
	Name         string
	DisplayName  string
	Enabled      bool
	Dispositions int
	Survey       string // "", "routed" or "ended"
	AutoAnswer   bool
}

// AdminNewService is the form that creates a service.
type AdminNewService struct {
	Name        string
	DisplayName string
	Error       string
	Errors      map[string]string
}

// AdminServiceForm edits a service and its strategy. Multi-line fields hold one entry per line.
type AdminServiceForm struct {
	Name                string
	DisplayName         string
	Enabled             bool
	WelcomeNotice       string
	AcceptTimeout       string
	DeclineCooldown     string
	AutoAnswer          bool
	Dispositions        string
	DispositionRequired bool
	SurveyEnabled       bool
	SurveyWhen          string
	SurveyURL           string
	SurveyQuestions     string // id|label|type
	RoutedUserData      string // KEY=template
	VisibleUserData     string // KEY
	PendingWarn         string
	PendingLate         string
	Error               string
	Errors              map[string]string
}

// AdminCannedRow is a canned response in the list.
type AdminCannedRow struct {
	ID      int64
	Title   string
	Service string // "" for every service
	Body    string
	Updated string
}

// AdminOption is an entry of a select list or a group of checkboxes.
type AdminOption struct {
	Value    string
	Label    string
	Selected bool
}

// AdminCannedForm creates (ID 0) or edits a canned response.
type AdminCannedForm struct {
	ID       int64
	Title    string
	Body     string
	Services []AdminOption // the first one is "every service"
	Error    string
	Errors   map[string]string
}

// AdminUserRow is a user in the list.
type AdminUserRow struct {
	ID          int64
	Username    string
	DisplayName string
	Role        string
	Capacity    int
	Services    string
	State       string
	Disabled    bool
}

// AdminUserForm creates (ID 0) or edits a user.
type AdminUserForm struct {
	ID          int64
	Username    string
	DisplayName string
	Role        string
	Capacity    string
	Disabled    bool
	Services    []AdminOption
	Self        bool // the signed-in admin edits themself
	Error       string
	Errors      map[string]string
}

// AdminAuditRow is an entry of the audit log.
type AdminAuditRow struct {
	At      string
	User    string
	Action  string
	Target  string
	Details string
}

// AdminRoles are the roles a user can have, in the order the form lists them.
var AdminRoles = []string{"agent", "supervisor", "admin"}

func adminInt(n int) string     { return strconv.Itoa(n) }
func adminInt64(n int64) string { return strconv.FormatInt(n, 10) }

func adminYesNo(b bool) string {
	if b {
		return "Yes"
	}
	return "No"
}

// adminField returns the attributes that tie an input to its error message, if it has one.
func adminField(errs map[string]string, name string) templ.Attributes {
	if errs[name] == "" {
		return templ.Attributes{}
	}
	return templ.Attributes{"aria-invalid": "true", "aria-describedby": "err-" + name}
}
