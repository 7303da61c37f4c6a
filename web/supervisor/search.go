package supervisor

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"agentd"
	"agentd/agent"
	"agentd/chat"
	"agentd/web"
	"agentd/web/templates"
)

// Search is the supervisors' search over interactions (postgres.SearchStore).
type Search interface {
	Search(ctx context.Context, f agent.SearchFilter, sort agent.SearchSort, desc bool, offset, limit int) ([]agent.SearchResult, error)
	SearchCount(ctx context.Context, f agent.SearchFilter) (int64, error)
	SearchEach(ctx context.Context, f agent.SearchFilter, sort agent.SearchSort, desc bool, fn func(agent.SearchResult) error) error
	SearchChoices(ctx context.Context) (services, agents []string, err error)
	AuditExport(ctx context.Context, userID int64, details map[string]any) error
}

// Search limits (docs/supervisor.md).
const (
	searchPageSize = 50
	searchMaxPage  = 200  // deeper than 10,000 rows is what the exports are for
	searchMaxQuery = 4096 // bytes of the whole query string
	searchMaxField = 200  // characters of the key, value and disposition
)

func (s *Surface) registerSearch(g *echo.Group) {
	g.GET("/search", s.handleSearch)
	g.GET("/search/export.csv", s.handleExport)
	g.GET("/search/export.json", s.handleExport)
}

// searchForm is a search as the form sent it, and as parsed.
type searchForm struct {
	raw    url.Values
	filter agent.SearchFilter
	sort   agent.SearchSort
	desc   bool
	page   int
}

var searchStates = []string{string(chat.StateQueued), string(chat.StateOffered), string(chat.StateActive), string(chat.StateEnded),
	string(chat.StateWrapped), string(chat.StateAbandoned)}

func invalid(format string, a ...any) error {
	return agentd.Errorf(agentd.EINVALID, "invalid_search", format, a...)
}

// parseDay reads a From or To value: a day (2006-01-02) or a time of day (2006-01-02T15:04), UTC.
// The end of a To is the end of its day, or of its minute.
func parseDay(name, v string, end bool) (*time.Time, error) {
	if v == "" {
		return nil, nil
	}
	if t, err := time.Parse("2006-01-02", v); err == nil {
		if end {
			t = t.AddDate(0, 0, 1)
		}
		return &t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05"} {
		if t, err := time.Parse(layout, v); err == nil {
			if end {
				t = t.Add(time.Minute)
			}
			return &t, nil
		}
	}
	return nil, invalid("%s is a date such as 2026-01-31 (or 2026-01-31T14:30), not %q.", name, v)
}

// parseSearch reads and checks the form. Every bad value is an invalid_search error saying what
// is wrong.
func parseSearch(q url.Values, services, agents []string) (searchForm, error) {
	f := searchForm{raw: url.Values{}, sort: agent.SortStarted, desc: true, page: 1}
	for k, vs := range q {
		for _, v := range vs {
			if !utf8.ValidString(v) || strings.ContainsFunc(v, unicode.IsControl) {
				return f, invalid("The search fields cannot hold control characters or invalid UTF-8 (%s).", k)
			}
		}
	}
	get := func(k string) string {
		v := strings.TrimSpace(q.Get(k))
		if v != "" {
			f.raw.Set(k, v)
		}
		return v
	}
	text, key, value := get("text"), get("key"), get("value")
	service, agentName, from, to := get("service"), get("agent"), get("from"), get("to")
	state, disposition, csat := get("state"), get("disposition"), get("csat")
	var err error
	if f.filter.Text, err = agent.ParseSearchText(text); err != nil {
		return f, err
	}
	for _, fv := range []struct{ name, v string }{{"UserData key", key}, {"UserData value", value}, {"Disposition", disposition}} {
		if utf8.RuneCountInString(fv.v) > searchMaxField {
			return f, invalid("%s is at most %d characters.", fv.name, searchMaxField)
		}
	}
	if value != "" && key == "" {
		return f, invalid("A UserData value needs a UserData key.")
	}
	f.filter.UserDataKey = key
	if strings.HasSuffix(value, "*") {
		f.filter.UserDataValue, f.filter.ValuePrefix = strings.TrimSuffix(value, "*"), true
	} else {
		f.filter.UserDataValue = value
	}
	if service != "" && !slices.Contains(services, service) {
		return f, invalid("There is no service %q.", service)
	}
	f.filter.Service = service
	if agentName != "" && !slices.ContainsFunc(agents, func(a string) bool { return strings.EqualFold(a, agentName) }) {
		return f, invalid("There is no agent %q.", agentName)
	}
	f.filter.Agent = agentName
	if f.filter.From, err = parseDay("From", from, false); err != nil {
		return f, err
	}
	if f.filter.To, err = parseDay("To", to, true); err != nil {
		return f, err
	}
	if f.filter.From != nil && f.filter.To != nil && !f.filter.From.Before(*f.filter.To) {
		return f, invalid("From is after To.")
	}
	if state != "" && !slices.Contains(searchStates, state) {
		return f, invalid("State is one of %s, not %q.", strings.Join(searchStates, ", "), state)
	}
	f.filter.State = state
	f.filter.Disposition = disposition
	if csat != "" {
		lo, hi, ok := strings.Cut(csat, "-")
		if !ok {
			hi = lo
		}
		a, errA := strconv.Atoi(strings.TrimSpace(lo))
		b, errB := strconv.Atoi(strings.TrimSpace(hi))
		if errA != nil || errB != nil || a < 1 || b > 5 || a > b {
			return f, invalid("CSAT is a score from 1 to 5, or a range such as 4-5, not %q.", csat)
		}
		f.filter.CSATMin, f.filter.CSATMax = a, b
	}
	if v := q.Get("sort"); v != "" {
		if !slices.Contains(agent.SearchSorts, agent.SearchSort(v)) {
			return f, invalid("Results sort by customer, service, started, ended, duration, state, disposition or csat, not %q.", v)
		}
		f.sort = agent.SearchSort(v)
	}
	switch q.Get("dir") {
	case "", "desc":
	case "asc":
		f.desc = false
	default:
		return f, invalid("The sort direction is asc or desc.")
	}
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > searchMaxPage {
			return f, invalid("Page is a number from 1 to %d; export the results for more.", searchMaxPage)
		}
		f.page = n
	}
	return f, nil
}

// url is the search page's link with the form's values and the given sort and page.
func (f searchForm) url(path string, sort agent.SearchSort, desc bool, page int) string {
	v := url.Values{}
	for k, vs := range f.raw {
		v[k] = vs
	}
	if sort != agent.SortStarted || !desc {
		v.Set("sort", string(sort))
		if desc {
			v.Set("dir", "desc")
		} else {
			v.Set("dir", "asc")
		}
	}
	if page > 1 {
		v.Set("page", strconv.Itoa(page))
	}
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

var searchColumns = []struct {
	label string
	sort  agent.SearchSort
}{
	{"Customer", agent.SortCustomer}, {"Service", agent.SortService}, {"Agents", ""}, {"Started", agent.SortStarted},
	{"Ended", agent.SortEnded}, {"Duration", agent.SortDuration}, {"State", agent.SortState},
	{"Disposition", agent.SortDisposition}, {"CSAT", agent.SortCSAT},
}

func (s *Surface) checkQuery(c echo.Context) error {
	if len(c.Request().URL.RawQuery) > searchMaxQuery {
		return invalid("The search is too long: at most %d bytes.", searchMaxQuery)
	}
	return nil
}

func (s *Surface) handleSearch(c echo.Context) error {
	ctx := c.Request().Context()
	services, agents, err := s.search.SearchChoices(ctx)
	if err != nil {
		return err
	}
	q := c.QueryParams()
	v := templates.SupervisorSearchView{Text: q.Get("text"), Key: q.Get("key"), Value: q.Get("value"), Service: q.Get("service"),
		Agent: q.Get("agent"), From: q.Get("from"), To: q.Get("to"), State: q.Get("state"), Disposition: q.Get("disposition"),
		CSAT: q.Get("csat"), Services: services, Agents: agents, States: searchStates}
	f, err := parseSearch(q, services, agents)
	if err == nil {
		err = s.checkQuery(c)
	}
	if err != nil {
		if agentd.ErrorClass(err) != agentd.EINVALID {
			return err
		}
		v.Error = agentd.ErrorMessage(err)
		if len(c.Request().URL.RawQuery) > searchMaxQuery {
			v.Text, v.Key, v.Value, v.Disposition = "", "", "", ""
		}
		return web.Render(c, http.StatusBadRequest, templates.SupervisorSearch(web.Viewer(c), v))
	}
	rs, err := s.search.Search(ctx, f.filter, f.sort, f.desc, (f.page-1)*searchPageSize, searchPageSize+1)
	if err != nil {
		return err
	}
	v.Page, v.HasText = f.page, len(f.filter.Text) > 0
	if len(rs) > searchPageSize {
		rs = rs[:searchPageSize]
		v.NextURL = f.url("/supervisor/search", f.sort, f.desc, f.page+1)
	}
	if f.page > 1 {
		v.PrevURL = f.url("/supervisor/search", f.sort, f.desc, f.page-1)
	}
	v.ExportCSV = f.url("/supervisor/search/export.csv", f.sort, f.desc, 1)
	v.ExportJSON = f.url("/supervisor/search/export.json", f.sort, f.desc, 1)
	for _, col := range searchColumns {
		h := templates.SearchColumn{Label: col.label}
		if col.sort != "" {
			desc := col.sort == agent.SortStarted || col.sort == agent.SortEnded || col.sort == agent.SortDuration || col.sort == agent.SortCSAT
			if col.sort == f.sort {
				h.AriaSort = "ascending"
				if f.desc {
					h.AriaSort = "descending"
				}
				desc = !f.desc
			}
			h.URL = f.url("/supervisor/search", col.sort, desc, 1)
		}
		v.Columns = append(v.Columns, h)
	}
	if v.HasText {
		v.Columns = append(v.Columns, templates.SearchColumn{Label: "Matching message"})
	}
	for _, r := range rs {
		row := templates.SearchRow{ID: r.ID, Customer: nameOr(r.Customer), Service: r.Service, Agents: strings.Join(r.Agents, ", "),
			Started: r.Started.Format(timeLayout), State: r.State, Disposition: r.Disposition, CSAT: r.CSAT, Snippet: snippetParts(r.Snippet)}
		if r.Ended != nil {
			row.Ended = r.Ended.Format(timeLayout)
			row.Duration = r.Ended.Sub(r.Started).Round(time.Second).String()
		}
		v.Rows = append(v.Rows, row)
	}
	return web.Render(c, http.StatusOK, templates.SupervisorSearch(web.Viewer(c), v))
}

// snippetParts splits a snippet on its markers (agent.SnippetStart, agent.SnippetStop) into
// text and marked text, which the page renders as elements: the snippet is never HTML.
func snippetParts(s string) []templates.SnippetPart {
	var out []templates.SnippetPart
	for s != "" {
		i := strings.Index(s, agent.SnippetStart)
		if i < 0 {
			out = append(out, templates.SnippetPart{Text: strings.ReplaceAll(s, agent.SnippetStop, "")})
			break
		}
		if i > 0 {
			out = append(out, templates.SnippetPart{Text: strings.ReplaceAll(s[:i], agent.SnippetStop, "")})
		}
		s = s[i+len(agent.SnippetStart):]
		j := strings.Index(s, agent.SnippetStop)
		if j < 0 {
			j = len(s)
		}
		out = append(out, templates.SnippetPart{Text: s[:j], Mark: true})
		s = strings.TrimPrefix(s[j:], agent.SnippetStop)
	}
	return out
}

// exportDetails is the audit row's details of an export: its filters as sent, format and rows.
func exportDetails(f searchForm, format string, rows int64) map[string]any {
	filters := map[string]string{}
	for k := range f.raw {
		filters[k] = f.raw.Get(k)
	}
	return map[string]any{"format": format, "filters": filters, "sort": string(f.sort), "desc": f.desc, "rows": rows}
}

func (s *Surface) handleExport(c echo.Context) error {
	ctx := c.Request().Context()
	if err := s.checkQuery(c); err != nil {
		return err
	}
	services, agents, err := s.search.SearchChoices(ctx)
	if err != nil {
		return err
	}
	f, err := parseSearch(c.QueryParams(), services, agents)
	if err != nil {
		return err
	}
	format := "csv"
	if strings.HasSuffix(c.Path(), ".json") {
		format = "json"
	}
	total, err := s.search.SearchCount(ctx, f.filter)
	if err != nil {
		return err
	}
	// The audit row is written before the first byte: an export that fails midway was still made.
	if err := s.search.AuditExport(ctx, web.CurrentUser(c).ID, exportDetails(f, format, total)); err != nil {
		return err
	}
	return streamExport(c, s.search, f, format, total)
}

// exportName is the download's file name.
func exportName(format string, now time.Time) string {
	return fmt.Sprintf("interactions-%s.%s", now.UTC().Format("20060102-150405"), format)
}
