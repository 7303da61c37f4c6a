package supervisor

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"agentd/agent"
)

// exportFlushRows is how many rows an export writes between flushes.
const exportFlushRows = 500

// errClientGone is a failed write of an export: the client went away.
type errClientGone struct{ err error }

func (e errClientGone) Error() string { return "export: client gone: " + e.err.Error() }

// exportRow is one interaction of a JSON export.
type exportRow struct {
	ID              string     `json:"id"`
	Customer        string     `json:"customer"`
	Service         string     `json:"service"`
	Agents          []string   `json:"agents"`
	Started         time.Time  `json:"started"`
	Ended           *time.Time `json:"ended"`
	DurationSeconds *int64     `json:"duration_seconds"`
	State           string     `json:"state"`
	Disposition     string     `json:"disposition"`
	CSAT            string     `json:"csat"`
}

var exportHeader = []string{"id", "customer", "service", "agents", "started", "ended", "duration_seconds", "state", "disposition", "csat"}

func toExportRow(r agent.SearchResult) exportRow {
	e := exportRow{ID: r.ID, Customer: r.Customer, Service: r.Service, Agents: r.Agents, Started: r.Started.UTC(), State: r.State,
		Disposition: r.Disposition, CSAT: r.CSAT}
	if e.Agents == nil {
		e.Agents = []string{}
	}
	if r.Ended != nil {
		end := r.Ended.UTC()
		d := int64(end.Sub(r.Started).Seconds())
		e.Ended, e.DurationSeconds = &end, &d
	}
	return e
}

// csvCell keeps a spreadsheet from reading a cell as a formula: a cell that starts with = + - @,
// a tab or a carriage return gets a leading apostrophe.
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// streamExport writes the whole result as CSV (a header line, then one line per interaction) or
// JSON (an array, one object per line), flushing every exportFlushRows rows. X-Total-Count is
// the number of rows that matched when the export started. A client that goes away stops the
// query; a database error midway aborts the response, so a cut export never looks complete.
func streamExport(c echo.Context, search Search, f searchForm, format string, total int64) error {
	res := c.Response()
	h := res.Header()
	if format == "csv" {
		h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	} else {
		h.Set(echo.HeaderContentType, "application/json; charset=utf-8")
	}
	h.Set("Content-Disposition", `attachment; filename="`+exportName(format, time.Now())+`"`)
	h.Set("X-Total-Count", strconv.FormatInt(total, 10))
	h.Set("Cache-Control", "no-store")
	res.WriteHeader(http.StatusOK)

	cw := csv.NewWriter(res)
	var n int
	flush := func() error {
		if format == "csv" {
			cw.Flush()
			if err := cw.Error(); err != nil {
				return errClientGone{err}
			}
		}
		if err := http.NewResponseController(res.Writer).Flush(); err != nil {
			return errClientGone{err}
		}
		return nil
	}
	write := func(s string) error {
		if _, err := res.Write([]byte(s)); err != nil {
			return errClientGone{err}
		}
		return nil
	}
	if format == "csv" {
		if err := cw.Write(exportHeader); err != nil {
			return nil
		}
	} else if err := write("["); err != nil {
		return nil
	}
	err := search.SearchEach(c.Request().Context(), f.filter, f.sort, f.desc, func(r agent.SearchResult) error {
		e := toExportRow(r)
		if format == "csv" {
			ended, dur := "", ""
			if e.Ended != nil {
				ended, dur = e.Ended.Format(time.RFC3339), strconv.FormatInt(*e.DurationSeconds, 10)
			}
			if err := cw.Write([]string{e.ID, csvCell(e.Customer), e.Service, csvCell(strings.Join(e.Agents, " ")), e.Started.Format(time.RFC3339),
				ended, dur, e.State, csvCell(e.Disposition), csvCell(e.CSAT)}); err != nil {
				return errClientGone{err}
			}
		} else {
			raw, err := json.Marshal(e)
			if err != nil {
				return err
			}
			sep := "\n"
			if n > 0 {
				sep = ",\n"
			}
			if err := write(sep + string(raw)); err != nil {
				return err
			}
		}
		n++
		if n%exportFlushRows == 0 {
			return flush()
		}
		return nil
	})
	var gone errClientGone
	if errors.As(err, &gone) || c.Request().Context().Err() != nil {
		return nil // nobody is listening any more; the query was stopped
	}
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if format == "json" {
		if err := write("\n]\n"); err != nil {
			return nil
		}
	}
	_ = flush()
	return nil
}
