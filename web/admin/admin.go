// Package admin is the administrators' surface, /admin: services and their routing strategy,
// canned responses, users and the audit log (docs/admin.md). Admins only; every form is
// CSRF-checked by the web core's Auth, redirects after success (303) to a page that confirms the
// change, and every change is audited by the agent package in the change's own commit.
package admin

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"agentd"
	"agentd/agent"
	"agentd/web"
	"agentd/web/templates"
)

// Admin is what the admin pages need from the agent side (agent.Admin).
type Admin interface {
	Services(ctx context.Context) ([]agent.ServiceInfo, error)
	Service(ctx context.Context, name string) (agent.ServiceInfo, error)
	CreateService(ctx context.Context, actor agent.User, ns agent.CreateServiceRequest) (agent.ServiceInfo, error)
	UpdateService(ctx context.Context, actor agent.User, name string, ch agent.ServiceChange) error
	CannedResponses(ctx context.Context, query string) ([]agent.CannedResponse, error)
	CannedResponse(ctx context.Context, id int64) (agent.CannedResponse, error)
	SaveCannedResponse(ctx context.Context, actor agent.User, c agent.CannedResponse) (int64, error)
	DeleteCannedResponse(ctx context.Context, actor agent.User, id int64) error
	Users(ctx context.Context) ([]agent.User, error)
	User(ctx context.Context, id int64) (agent.User, error)
	CreateUser(ctx context.Context, actor agent.User, nu agent.NewUser) (agent.User, error)
	UpdateUser(ctx context.Context, actor agent.User, ch agent.UserChange) (agent.User, error)
	AuditLog(ctx context.Context, limit int) ([]agent.AuditEntry, error)
}

// Deps is what the admin surface is built from.
type Deps struct {
	Admin Admin
	Auth  *web.Auth
	// Webhooks, when set, serves /admin/webhooks (webhooks.go).
	Webhooks Webhooks
	// Tokens, when set, serves /admin/tokens (tokens.go).
	Tokens Tokens
}

// Surface serves /admin.
type Surface struct {
	admin    Admin
	auth     *web.Auth
	webhooks Webhooks
	tokens   Tokens
}

// New returns the admin surface.
func New(d Deps) *Surface {
	return &Surface{admin: d.Admin, auth: d.Auth, webhooks: d.Webhooks, tokens: d.Tokens}
}

// serviceFormLimit is the service form's body limit. The form carries a whole strategy: routed
// UserData whose values may each take 4096 bytes (three times as many URL-encoded), survey
// questions, dispositions, the welcome notice.
const serviceFormLimit = 1 << 20

// bodyLimit sizes the admin forms. It comes before Require, which reads a form's CSRF token.
func bodyLimit(c echo.Context) int64 {
	if c.Path() == "/admin/services/:name" {
		return serviceFormLimit
	}
	return web.FormLimit
}

// Register adds the admin routes, for admins only.
func (s *Surface) Register(e *echo.Echo) {
	g := e.Group("/admin", web.BodyLimitFunc(bodyLimit), s.auth.Require(agent.RoleAdmin))
	g.GET("", s.handleAdmin)
	g.GET("/services", s.handleAdminServices)
	g.POST("/services", s.handleAdminServiceCreate)
	g.GET("/services/:name", s.handleAdminService)
	g.POST("/services/:name", s.handleAdminServiceUpdate)
	g.GET("/canned", s.handleAdminCanned)
	g.GET("/canned/new", s.handleAdminCannedNew)
	g.POST("/canned", s.handleAdminCannedSave)
	g.GET("/canned/:id", s.handleAdminCannedEdit)
	g.POST("/canned/:id", s.handleAdminCannedSave)
	g.POST("/canned/:id/delete", s.handleAdminCannedDelete)
	g.GET("/users", s.handleAdminUsers)
	g.GET("/users/new", s.handleAdminUserNew)
	g.POST("/users", s.handleAdminUserCreate)
	g.GET("/users/:id", s.handleAdminUser)
	g.POST("/users/:id", s.handleAdminUserUpdate)
	g.GET("/audit", s.handleAdminAudit)
	if s.webhooks != nil {
		s.registerWebhooks(g)
	}
	if s.tokens != nil {
		s.registerTokens(g)
	}
}

// auditPageSize is how many entries the audit log page shows.
const auditPageSize = 200

// adminFlashes are the confirmations a redirect may ask for. Only these fixed texts are shown,
// never text taken from the URL.
var adminFlashes = []struct{ param, text string }{
	{"created", "Created."},
	{"saved", "Saved."},
	{"deleted", "Deleted."},
}

func adminFrame(c echo.Context, title, section string) templates.AdminFrame {
	f := templates.AdminFrame{Title: title, Section: section}
	for _, fl := range adminFlashes {
		if c.QueryParam(fl.param) != "" {
			f.Flash = fl.text
		}
	}
	return f
}

// formProblem sorts the error of a form submission: invalid input (per field or for the whole
// form) is shown on the form again with its status; anything else goes to the error handler.
func formProblem(err error) (fields map[string]string, msg string, status int, ok bool) {
	switch agentd.ErrorClass(err) {
	case agentd.EINVALID, agentd.ECONFLICT:
	default:
		return nil, "", 0, false
	}
	if fields = agent.FieldsOf(err); fields != nil {
		return fields, "", http.StatusUnprocessableEntity, true
	}
	return nil, agentd.ErrorMessage(err), web.Status(err), true
}

func formValues(c echo.Context) (url.Values, error) {
	form, err := c.FormParams()
	if err != nil {
		return nil, agentd.Errorf(agentd.EINVALID, "invalid_argument", "The form could not be read.")
	}
	return form, nil
}

func pathID(c echo.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, agentd.Errorf(agentd.ENOTFOUND, "not_found", "Not found.")
	}
	return id, nil
}

func adminTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

func (s *Surface) handleAdmin(c echo.Context) error {
	ctx := c.Request().Context()
	svcs, err := s.admin.Services(ctx)
	if err != nil {
		return err
	}
	users, err := s.admin.Users(ctx)
	if err != nil {
		return err
	}
	canned, err := s.admin.CannedResponses(ctx, "")
	if err != nil {
		return err
	}
	recent, err := s.auditRows(c, 10)
	if err != nil {
		return err
	}
	o := templates.AdminOverview{Services: len(svcs), Users: len(users), Canned: len(canned), Recent: recent}
	return web.Render(c, http.StatusOK, templates.AdminHome(web.Viewer(c), adminFrame(c, "Overview", ""), o))
}

// Services

func (s *Surface) renderServices(c echo.Context, status int, nf templates.AdminNewService) error {
	svcs, err := s.admin.Services(c.Request().Context())
	if err != nil {
		return err
	}
	rows := make([]templates.AdminServiceRow, 0, len(svcs))
	for _, si := range svcs {
		st, _ := agent.ParseStrategy(si.Strategy) // a strategy stored invalid still lists
		rows = append(rows, templates.AdminServiceRow{Name: si.Name, DisplayName: si.DisplayName, Enabled: si.Enabled,
			Dispositions: len(st.Dispositions), Survey: st.SurveyWhen(), AutoAnswer: st.AutoAnswer})
	}
	return web.Render(c, status, templates.AdminServices(web.Viewer(c), adminFrame(c, "Services", "services"), rows, nf))
}

func (s *Surface) handleAdminServices(c echo.Context) error {
	return s.renderServices(c, http.StatusOK, templates.AdminNewService{})
}

func (s *Surface) handleAdminServiceCreate(c echo.Context) error {
	req := agent.CreateServiceRequest{Name: c.FormValue("name"), DisplayName: c.FormValue("display_name")}
	si, err := s.admin.CreateService(c.Request().Context(), web.CurrentUser(c), req)
	if err != nil {
		fields, msg, status, ok := formProblem(err)
		if !ok {
			return err
		}
		return s.renderServices(c, status, templates.AdminNewService{Name: req.Name, DisplayName: req.DisplayName, Errors: fields, Error: msg})
	}
	return c.Redirect(http.StatusSeeOther, "/admin/services/"+url.PathEscape(si.Name)+"?created=1")
}

func (s *Surface) handleAdminService(c echo.Context) error {
	si, err := s.admin.Service(c.Request().Context(), c.Param("name"))
	if err != nil {
		return err
	}
	var st agent.Strategy
	_ = json.Unmarshal(si.Strategy, &st) // show what can be read of a strategy stored invalid
	return web.Render(c, http.StatusOK, templates.AdminService(web.Viewer(c), adminFrame(c, si.DisplayName, "services"), serviceForm(si, st)))
}

func (s *Surface) handleAdminServiceUpdate(c echo.Context) error {
	ctx := c.Request().Context()
	name := c.Param("name")
	si, err := s.admin.Service(ctx, name)
	if err != nil {
		return err
	}
	form, err := formValues(c)
	if err != nil {
		return err
	}
	f, ch, shapeErrs := parseServiceForm(si.Name, form)
	again := func(status int, fields map[string]string, msg string) error {
		f.Errors, f.Error = fields, msg
		return web.Render(c, status, templates.AdminService(web.Viewer(c), adminFrame(c, si.DisplayName, "services"), f))
	}
	if len(shapeErrs) > 0 {
		// Show every problem at once: the domain's messages for the fields that could be read.
		fields := map[string]string{}
		maps.Copy(fields, agent.FieldsOf(ch.Validate()))
		maps.Copy(fields, shapeErrs)
		return again(http.StatusUnprocessableEntity, fields, "")
	}
	if err := s.admin.UpdateService(ctx, web.CurrentUser(c), si.Name, ch); err != nil {
		fields, msg, status, ok := formProblem(err)
		if !ok {
			return err
		}
		return again(status, fields, msg)
	}
	return c.Redirect(http.StatusSeeOther, "/admin/services/"+url.PathEscape(si.Name)+"?saved=1")
}

// Canned responses

func (s *Surface) handleAdminCanned(c echo.Context) error {
	q := c.QueryParam("q")
	cs, err := s.admin.CannedResponses(c.Request().Context(), q)
	if err != nil {
		return err
	}
	rows := make([]templates.AdminCannedRow, 0, len(cs))
	for _, cr := range cs {
		body := cr.Body
		if r := []rune(body); len(r) > 140 {
			body = string(r[:140]) + "…"
		}
		rows = append(rows, templates.AdminCannedRow{ID: cr.ID, Title: cr.Title, Service: cr.Service, Body: body, Updated: adminTime(cr.UpdatedAt)})
	}
	return web.Render(c, http.StatusOK, templates.AdminCanned(web.Viewer(c), adminFrame(c, "Canned responses", "canned"), q, rows))
}

// cannedForm fills the service choices of a canned response form.
func (s *Surface) cannedForm(c echo.Context, f templates.AdminCannedForm, serviceID int64) (templates.AdminCannedForm, error) {
	svcs, err := s.admin.Services(c.Request().Context())
	if err != nil {
		return f, err
	}
	f.Services = []templates.AdminOption{{Value: "0", Label: "All services", Selected: serviceID == 0}}
	for _, si := range svcs {
		f.Services = append(f.Services, templates.AdminOption{Value: strconv.FormatInt(si.ID, 10),
			Label: si.DisplayName + " (" + si.Name + ")", Selected: si.ID == serviceID})
	}
	return f, nil
}

func (s *Surface) renderCannedForm(c echo.Context, status int, f templates.AdminCannedForm, serviceID int64) error {
	f, err := s.cannedForm(c, f, serviceID)
	if err != nil {
		return err
	}
	title := "New canned response"
	if f.ID != 0 {
		title = "Edit canned response"
	}
	return web.Render(c, status, templates.AdminCannedEdit(web.Viewer(c), adminFrame(c, title, "canned"), f))
}

func (s *Surface) handleAdminCannedNew(c echo.Context) error {
	return s.renderCannedForm(c, http.StatusOK, templates.AdminCannedForm{}, 0)
}

func (s *Surface) handleAdminCannedEdit(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	cr, err := s.admin.CannedResponse(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return s.renderCannedForm(c, http.StatusOK, templates.AdminCannedForm{ID: cr.ID, Title: cr.Title, Body: cr.Body}, cr.ServiceID)
}

// handleAdminCannedSave creates (POST /admin/canned) or updates (POST /admin/canned/:id).
func (s *Surface) handleAdminCannedSave(c echo.Context) error {
	var id int64
	if c.Param("id") != "" {
		var err error
		if id, err = pathID(c); err != nil {
			return err
		}
	}
	cr := agent.CannedResponse{ID: id, Title: c.FormValue("title"), Body: c.FormValue("body")}
	f := templates.AdminCannedForm{ID: id, Title: cr.Title, Body: cr.Body}
	serviceID, err := strconv.ParseInt(c.FormValue("service"), 10, 64)
	if err != nil {
		serviceID = -1 // refused by Validate with a message on the field
	}
	cr.ServiceID = serviceID
	newID, err := s.admin.SaveCannedResponse(c.Request().Context(), web.CurrentUser(c), cr)
	if err != nil {
		fields, msg, status, ok := formProblem(err)
		if !ok {
			return err
		}
		f.Errors, f.Error = fields, msg
		return s.renderCannedForm(c, status, f, serviceID)
	}
	if id == 0 {
		return c.Redirect(http.StatusSeeOther, "/admin/canned/"+strconv.FormatInt(newID, 10)+"?created=1")
	}
	return c.Redirect(http.StatusSeeOther, "/admin/canned/"+strconv.FormatInt(id, 10)+"?saved=1")
}

func (s *Surface) handleAdminCannedDelete(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	if err := s.admin.DeleteCannedResponse(c.Request().Context(), web.CurrentUser(c), id); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/admin/canned?deleted=1")
}

// Users

func (s *Surface) handleAdminUsers(c echo.Context) error {
	us, err := s.admin.Users(c.Request().Context())
	if err != nil {
		return err
	}
	rows := make([]templates.AdminUserRow, 0, len(us))
	for _, u := range us {
		state := string(u.State)
		if u.State == agent.StateNotReady && u.NotReadyReason != "" {
			state += " (" + u.NotReadyReason + ")"
		}
		rows = append(rows, templates.AdminUserRow{ID: u.ID, Username: u.Username, DisplayName: u.DisplayName, Role: string(u.Role),
			Capacity: u.Capacity, Services: strings.Join(u.Services, ", "), State: state, Disabled: u.Disabled})
	}
	return web.Render(c, http.StatusOK, templates.AdminUsers(web.Viewer(c), adminFrame(c, "Users", "users"), rows))
}

// renderUserForm shows the user form with the service checkboxes ticked as given.
func (s *Surface) renderUserForm(c echo.Context, status int, f templates.AdminUserForm, services []string) error {
	svcs, err := s.admin.Services(c.Request().Context())
	if err != nil {
		return err
	}
	for _, si := range svcs {
		f.Services = append(f.Services, templates.AdminOption{Value: si.Name, Label: si.DisplayName + " (" + si.Name + ")",
			Selected: slices.Contains(services, si.Name)})
	}
	f.Self = f.ID != 0 && f.ID == web.CurrentUser(c).ID
	title := "New user"
	if f.ID != 0 {
		title = f.Username
	}
	return web.Render(c, status, templates.AdminUserEdit(web.Viewer(c), adminFrame(c, title, "users"), f))
}

func (s *Surface) handleAdminUserNew(c echo.Context) error {
	f := templates.AdminUserForm{Role: string(agent.RoleAgent), Capacity: strconv.Itoa(agent.DefaultCapacity)}
	return s.renderUserForm(c, http.StatusOK, f, nil)
}

// userFormCapacity reads the capacity field; text that is not a number is reported on the field.
func userFormCapacity(s string) (int, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return agent.DefaultCapacity, true
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

func (s *Surface) handleAdminUserCreate(c echo.Context) error {
	form, err := formValues(c)
	if err != nil {
		return err
	}
	f := templates.AdminUserForm{Username: form.Get("username"), DisplayName: form.Get("display_name"), Role: form.Get("role"), Capacity: form.Get("capacity")}
	services := form["services"]
	capacity, ok := userFormCapacity(f.Capacity)
	if !ok {
		f.Errors = map[string]string{"capacity": "Enter a whole number of chats."}
		return s.renderUserForm(c, http.StatusUnprocessableEntity, f, services)
	}
	nu := agent.NewUser{Username: f.Username, Password: form.Get("password"), Role: agent.Role(f.Role), DisplayName: f.DisplayName,
		Capacity: capacity, Services: services}
	u, err := s.admin.CreateUser(c.Request().Context(), web.CurrentUser(c), nu)
	if err != nil {
		fields, msg, status, ok := formProblem(err)
		if !ok {
			return err
		}
		f.Errors, f.Error = fields, msg
		return s.renderUserForm(c, status, f, services)
	}
	return c.Redirect(http.StatusSeeOther, "/admin/users/"+strconv.FormatInt(u.ID, 10)+"?created=1")
}

func (s *Surface) handleAdminUser(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	u, err := s.admin.User(c.Request().Context(), id)
	if err != nil {
		return err
	}
	f := templates.AdminUserForm{ID: u.ID, Username: u.Username, DisplayName: u.DisplayName, Role: string(u.Role),
		Capacity: strconv.Itoa(u.Capacity), Disabled: u.Disabled}
	return s.renderUserForm(c, http.StatusOK, f, u.Services)
}

func (s *Surface) handleAdminUserUpdate(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	u, err := s.admin.User(c.Request().Context(), id)
	if err != nil {
		return err
	}
	form, err := formValues(c)
	if err != nil {
		return err
	}
	f := templates.AdminUserForm{ID: u.ID, Username: u.Username, DisplayName: form.Get("display_name"), Role: form.Get("role"),
		Capacity: form.Get("capacity"), Disabled: formChecked(form, "disabled")}
	services := form["services"]
	capacity, ok := userFormCapacity(f.Capacity)
	if !ok {
		f.Errors = map[string]string{"capacity": "Enter a whole number of chats."}
		return s.renderUserForm(c, http.StatusUnprocessableEntity, f, services)
	}
	ch := agent.UserChange{ID: u.ID, DisplayName: f.DisplayName, Role: agent.Role(f.Role), Capacity: capacity, Disabled: f.Disabled,
		Services: services, NewPassword: form.Get("new_password")}
	if _, err := s.admin.UpdateUser(c.Request().Context(), web.CurrentUser(c), ch); err != nil {
		fields, msg, status, ok := formProblem(err)
		if !ok {
			return err
		}
		f.Errors, f.Error = fields, msg
		return s.renderUserForm(c, status, f, services)
	}
	return c.Redirect(http.StatusSeeOther, "/admin/users/"+strconv.FormatInt(u.ID, 10)+"?saved=1")
}

// Audit log

func (s *Surface) auditRows(c echo.Context, limit int) ([]templates.AdminAuditRow, error) {
	es, err := s.admin.AuditLog(c.Request().Context(), limit)
	if err != nil {
		return nil, err
	}
	rows := make([]templates.AdminAuditRow, 0, len(es))
	for _, e := range es {
		user := e.Username
		if e.UserID == 0 {
			user = "agentd"
		}
		details := string(e.Details)
		if details == "{}" {
			details = ""
		}
		rows = append(rows, templates.AdminAuditRow{At: adminTime(e.At), User: user, Action: e.Action, Target: e.Target, Details: details})
	}
	return rows, nil
}

func (s *Surface) handleAdminAudit(c echo.Context) error {
	rows, err := s.auditRows(c, auditPageSize)
	if err != nil {
		return err
	}
	return web.Render(c, http.StatusOK, templates.AdminAudit(web.Viewer(c), adminFrame(c, "Audit log", "audit"), rows))
}
