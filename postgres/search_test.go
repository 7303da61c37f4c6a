package postgres_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"agentd/agent"
	"agentd/postgres"
)

// The search benchmark (docs/benchmarks.md, "Search"): a generated data set copied into a
// scratch database before the search migration (009) builds its indexes, then every query kind
// of /supervisor/search run through the same SearchStore.Search the page uses.
//
// Without AGENTD_BENCH_SEARCH it runs on 2,000 chats and checks that every query kind finds
// what the data set holds (CI); `make bench-search` runs it on 100,000 chats and 1,000,000
// messages and reports p50/p95 (AGENTD_BENCH_SEARCH_CHATS changes the size).

// benchWords is the vocabulary of the generated messages, most frequent first (the messages
// draw from it with a Zipf distribution, as real text does).
var benchWords = strings.Fields(`the to and a i you is for my of it in that on this have with can be order
please your we are not me will was at what do an if so but just help get how thank thanks there
account when would like need one from no any about they all as or know hi hello yes ok sure time
payment card delivery parcel package refund return invoice address email password login app
website price discount code shipping tracking number problem issue error working broken charge
charged twice cancel cancelled subscription plan upgrade downgrade monthly yearly billing receipt
item size colour color wrong damaged missing late arrived week days today tomorrow yesterday
morning evening store online phone call support agent manager service quality great good bad
slow fast available stock restock warranty repair replacement exchange voucher gift loyalty
points balance bank transfer paypal checkout basket cart product model version update install
download screen battery charger cable headphones laptop tablet printer router modem signal wifi
network outage reset restart settings profile verify verification confirm confirmation link
expired reactivate contact details name surname street city postcode country europe london
paris berlin madrid rome courier driver depot collection pickup locker neighbour signature photo
label barcode reference ticket complaint feedback survey rating review satisfied unhappy happy
frustrated urgent asap still again already never always sometimes maybe actually really very
much more less first last next previous new old same different other another every each both
hovercraft eels zeppelin quokka`)

var benchNames = strings.Fields(`Anna Ben Carla David Emma Felix Greta Hugo Ines Jonas Klara Leo Mia Noah Olga
Paul Quinn Rosa Sam Tina Uwe Vera Will Xena Yara Zoe Ahmed Bea Chen Dora Erik Fatima Goran Hana`)

var benchDispositions = []string{"Resolved", "Escalated", "Refund issued", "Follow-up", "Spam", ""}

type benchData struct {
	services  []string
	agents    []string
	phrases   [][2]string // adjacent words of generated messages
	cobrowse  []string    // CoBrowseSessionId values set
	orders    []string    // OrderId values set
	start     time.Time
	chats     int
	messages  int
	histories int
}

func benchEnv(t *testing.T) (chats int, full bool) {
	if os.Getenv("AGENTD_BENCH_SEARCH") == "" {
		return 2000, false
	}
	chats = 100000
	if v := os.Getenv("AGENTD_BENCH_SEARCH_CHATS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 100 {
			t.Fatalf("AGENTD_BENCH_SEARCH_CHATS=%q: want a number of chats, at least 100", v)
		}
		chats = n
	}
	return chats, true
}

func uuidOf(n int) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[8:], uint64(n)+1)
	b[6] = 0x40
	b[8] |= 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// generate copies the data set into the database, which has the migrations before 009.
func generate(t *testing.T, ctx context.Context, conn *pgx.Conn, chats int) benchData {
	t.Helper()
	r := rand.New(rand.NewPCG(9, 2026))
	d := benchData{services: []string{"default", "billing", "sales", "support", "returns"}, chats: chats,
		start: time.Now().UTC().Add(-30 * 24 * time.Hour)}
	for _, s := range d.services[1:] {
		if _, err := conn.Exec(ctx, `INSERT INTO services (name, display_name) VALUES ($1, $1)`, s); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 40 {
		d.agents = append(d.agents, fmt.Sprintf("agent%02d", i))
	}
	if _, err := conn.Exec(ctx, `INSERT INTO users (username, display_name, password_hash, role)
		SELECT u, u, 'x', 'agent' FROM unnest($1::text[]) u`, d.agents); err != nil {
		t.Fatal(err)
	}
	var serviceIDs, userIDs []int64
	if err := conn.QueryRow(ctx, `SELECT array_agg(id ORDER BY id) FROM services`).Scan(&serviceIDs); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SELECT array_agg(id ORDER BY id) FROM users`).Scan(&userIDs); err != nil {
		t.Fatal(err)
	}
	zipf := rand.NewZipf(r, 1.1, 2, uint64(len(benchWords)-1))
	type chatRow struct {
		id      string
		service int64
		user    int64
		created time.Time
		ended   time.Time
		state   string
		disp    string
	}
	rows := make([]chatRow, chats)
	span := 30 * 24 * time.Hour
	for i := range rows {
		created := d.start.Add(time.Duration(r.Int64N(int64(span))))
		state, disp := "wrapped", benchDispositions[r.IntN(len(benchDispositions))]
		switch n := r.IntN(20); {
		case n == 0:
			state, disp = "abandoned", ""
		case n == 1:
			state, disp = "ended", ""
		}
		rows[i] = chatRow{id: uuidOf(i), service: serviceIDs[r.IntN(len(serviceIDs))], user: userIDs[r.IntN(len(userIDs))],
			created: created, ended: created.Add(time.Duration(2+r.IntN(40)) * time.Minute), state: state, disp: disp}
	}
	copyRows := func(table string, cols []string, n int, row func(i int) []any) {
		t.Helper()
		i := 0
		if _, err := conn.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromFunc(func() ([]any, error) {
			if i == n {
				return nil, nil
			}
			i++
			return row(i - 1), nil
		})); err != nil {
			t.Fatalf("copy %s: %v", table, err)
		}
	}
	copyRows("interactions", []string{"id", "service_id", "state", "secure_key_hash", "start_token_hash", "customer_name", "created_at",
		"ended_at", "disposition", "wrapped_at"}, chats, func(i int) []any {
		c := rows[i]
		return []any{c.id, c.service, c.state, []byte{0}, []byte(c.id), benchNames[i%len(benchNames)] + " " + benchNames[(i/7)%len(benchNames)],
			c.created, c.ended, c.disp, c.ended}
	})
	copyRows("assignments", []string{"interaction_id", "user_id", "state", "offered_at", "accepted_at", "finished_at"}, chats, func(i int) []any {
		c := rows[i]
		if c.state == "abandoned" {
			return []any{c.id, c.user, "timed_out", c.created, nil, c.created.Add(30 * time.Second)}
		}
		return []any{c.id, c.user, "done", c.created, c.created.Add(10 * time.Second), c.ended}
	})
	// About 10 messages a chat, 3 to 25 words each.
	var msgChat, msgIdx []int
	for i := range rows {
		for k := range 5 + r.IntN(11) {
			msgChat, msgIdx = append(msgChat, i), append(msgIdx, k)
		}
	}
	d.messages = len(msgChat)
	var sb strings.Builder
	copyRows("transcript_events", []string{"interaction_id", "idx", "kind", "text", "created_at"}, len(msgChat), func(j int) []any {
		c := rows[msgChat[j]]
		sb.Reset()
		n := 3 + r.IntN(23)
		prev := ""
		for w := range n {
			word := benchWords[zipf.Uint64()]
			if r.IntN(50) == 0 {
				word = fmt.Sprintf("A%06d", r.IntN(1000000)) // order numbers and the like
			}
			if w > 0 {
				sb.WriteByte(' ')
			}
			sb.WriteString(word)
			if prev != "" && len(d.phrases) < 5000 && r.IntN(200) == 0 {
				d.phrases = append(d.phrases, [2]string{prev, word})
			}
			prev = word
		}
		if r.IntN(4) == 0 {
			sb.WriteString("?")
		}
		return []any{c.id, msgIdx[j], "message", sb.String(), c.created.Add(time.Duration(msgIdx[j]) * 20 * time.Second)}
	})
	// UserData history: FirstName and Plan on every chat, OrderId on half, CoBrowseSessionId on a
	// fifth (changed afterwards on a tenth of those).
	type hist struct {
		chat int
		key  string
		val  string
	}
	var hs []hist
	for i := range rows {
		hs = append(hs, hist{i, "FirstName", benchNames[i%len(benchNames)]}, hist{i, "Plan", []string{"gold", "silver", "bronze"}[r.IntN(3)]})
		if r.IntN(2) == 0 {
			v := fmt.Sprintf("ORD-%07d", r.IntN(10000000))
			hs = append(hs, hist{i, "OrderId", v})
			if len(d.orders) < 1000 {
				d.orders = append(d.orders, v)
			}
		}
		if r.IntN(5) == 0 {
			v := fmt.Sprintf("CB-%08d", r.IntN(100000000))
			hs = append(hs, hist{i, "CoBrowseSessionId", v})
			if len(d.cobrowse) < 1000 {
				d.cobrowse = append(d.cobrowse, v)
			}
			if r.IntN(10) == 0 {
				hs = append(hs, hist{i, "CoBrowseSessionId", fmt.Sprintf("CB-%08d", r.IntN(100000000))})
			}
		}
	}
	d.histories = len(hs)
	seq := map[int]int{}
	copyRows("userdata_history", []string{"interaction_id", "seq", "key", "op", "new_value", "owner", "visible", "was_visible", "created_at"},
		len(hs), func(j int) []any {
			h := hs[j]
			seq[h.chat]++
			return []any{rows[h.chat].id, seq[h.chat], h.key, "set", strconv.Quote(h.val), "client", true, false, rows[h.chat].created}
		})
	copyRows("survey_responses", []string{"interaction_id", "answers", "submitted_at"}, chats/5*2, func(j int) []any {
		c := rows[j*5/2]
		return []any{c.id, fmt.Sprintf(`{"CSAT": "%d"}`, 1+r.IntN(5)), c.ended}
	})
	return d
}

// queryKind is one kind of search of the benchmark, with a filter maker over the data set.
type queryKind struct {
	name   string
	filter func(r *rand.Rand, d benchData) agent.SearchFilter
}

func mustTerms(s string) []agent.SearchTerm {
	ts, err := agent.ParseSearchText(s)
	if err != nil {
		panic(err)
	}
	return ts
}

func day(d benchData, r *rand.Rand) (*time.Time, *time.Time) {
	from := d.start.Add(time.Duration(r.IntN(23)) * 24 * time.Hour).Truncate(24 * time.Hour)
	to := from.Add(7 * 24 * time.Hour)
	return &from, &to
}

var queryKinds = []queryKind{
	{"text word", func(r *rand.Rand, d benchData) agent.SearchFilter {
		return agent.SearchFilter{Text: mustTerms(benchWords[20+r.IntN(len(benchWords)-20)])}
	}},
	{"text phrase", func(r *rand.Rand, d benchData) agent.SearchFilter {
		p := d.phrases[r.IntN(len(d.phrases))]
		return agent.SearchFilter{Text: mustTerms(`"` + p[0] + " " + p[1] + `"`)}
	}},
	{"text prefix", func(r *rand.Rand, d benchData) agent.SearchFilter {
		w := benchWords[20+r.IntN(len(benchWords)-20)]
		return agent.SearchFilter{Text: mustTerms(w[:min(len(w), 3+r.IntN(2))] + "*")}
	}},
	{"UserData key=value", func(r *rand.Rand, d benchData) agent.SearchFilter {
		return agent.SearchFilter{UserDataKey: "CoBrowseSessionId", UserDataValue: d.cobrowse[r.IntN(len(d.cobrowse))]}
	}},
	{"UserData prefix", func(r *rand.Rand, d benchData) agent.SearchFilter {
		v := d.orders[r.IntN(len(d.orders))]
		return agent.SearchFilter{UserDataKey: "OrderId", UserDataValue: v[:7+r.IntN(3)], ValuePrefix: true}
	}},
	{"text + service + 7 days", func(r *rand.Rand, d benchData) agent.SearchFilter {
		from, to := day(d, r)
		return agent.SearchFilter{Text: mustTerms(benchWords[20+r.IntN(len(benchWords)-20)]), Service: d.services[r.IntN(len(d.services))], From: from, To: to}
	}},
	{"UserData key + agent", func(r *rand.Rand, d benchData) agent.SearchFilter {
		return agent.SearchFilter{UserDataKey: "CoBrowseSessionId", Agent: d.agents[r.IntN(len(d.agents))]}
	}},
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// TestSearchBenchmark generates the data set and times every query kind (see above).
func TestSearchBenchmark(t *testing.T) {
	chats, full := benchEnv(t)
	if !full {
		t.Parallel()
	}
	ctx := context.Background()
	url, conn, _ := migratedTo(t, 8)
	began := time.Now()
	d := generate(t, ctx, conn, chats)
	generated := time.Since(began)
	began = time.Now()
	if _, err := postgres.Migrate(ctx, url); err != nil { // 009 builds the search indexes
		t.Fatal(err)
	}
	indexed := time.Since(began)
	if _, err := conn.Exec(ctx, `ANALYZE`); err != nil {
		t.Fatal(err)
	}
	var size string
	if err := conn.QueryRow(ctx, `SELECT pg_size_pretty(pg_database_size(current_database()))`).Scan(&size); err != nil {
		t.Fatal(err)
	}
	db, err := postgres.Open(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store := postgres.NewSearchStore(db)
	t.Logf("data: %d chats, %d messages, %d UserData history rows, %d agents, %d services over 30 days; database %s",
		d.chats, d.messages, d.histories, len(d.agents), len(d.services), size)
	t.Logf("generated and copied in %v, indexes (migration 009) built in %v; GOMAXPROCS %d", generated.Round(time.Millisecond),
		indexed.Round(time.Millisecond), runtime.GOMAXPROCS(0))

	runs := 50
	if !full {
		runs = 5
	}
	r := rand.New(rand.NewPCG(1, 2))
	// Warm the cache once, as a server that has been running would have it.
	for _, k := range queryKinds {
		if _, err := store.Search(ctx, k.filter(r, d), agent.SortStarted, true, 0, 51); err != nil {
			t.Fatalf("%s: %v", k.name, err)
		}
	}
	t.Logf("| Query | Runs | p50 | p95 | max | rows per page (median) |")
	t.Logf("|---|---|---|---|---|---|")
	for _, k := range queryKinds {
		var times []time.Duration
		var found []int
		var slowest agent.SearchFilter
		for range runs {
			f := k.filter(r, d)
			began := time.Now()
			rs, err := store.Search(ctx, f, agent.SortStarted, true, 0, 51)
			times = append(times, time.Since(began))
			if times[len(times)-1] == slices.Max(times) {
				slowest = f
			}
			if err != nil {
				t.Fatalf("%s: %v", k.name, err)
			}
			found = append(found, len(rs))
		}
		slices.Sort(found)
		t.Logf("| %s | %d | %.1f ms | %.1f ms | %.1f ms | %d |", k.name, runs, ms(percentile(times, 0.5)), ms(percentile(times, 0.95)),
			ms(slices.Max(times)), found[len(found)/2])
		if os.Getenv("AGENTD_BENCH_SEARCH_EXPLAIN") != "" {
			ids, err := store.TextMatches(ctx, slowest)
			if err != nil {
				t.Fatal(err)
			}
			sql, args, _ := postgres.SearchPageSQL(slowest, ids, agent.SortStarted, true, 0, 51)
			var plan []string
			rows, err := conn.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+sql, args...)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var line string
				if err := rows.Scan(&line); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, line)
			}
			t.Logf("%s, slowest: %+v\n%s", k.name, slowest, strings.Join(plan, "\n"))
		}
		if found[len(found)-1] == 0 {
			t.Errorf("%s found nothing in %d runs: the data set or the query is wrong", k.name, runs)
		}
	}
	if keep := os.Getenv("AGENTD_BENCH_SEARCH_KEEP"); keep != "" {
		// Keep a copy of the data set for looking at plans by hand (psql), as database keep.
		var name string
		if err := conn.QueryRow(ctx, `SELECT current_database()`).Scan(&name); err != nil {
			t.Fatal(err)
		}
		db.Close()
		conn.Close(ctx)
		admin, err := pgx.Connect(ctx, strings.Replace(url, "/"+name, "/postgres", 1))
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close(ctx)
		if _, err := admin.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{keep}.Sanitize()); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{keep}.Sanitize()+` TEMPLATE `+pgx.Identifier{name}.Sanitize()); err != nil {
			t.Fatal(err)
		}
		t.Logf("kept the data set as database %s", keep)
		return
	}
	// A CoBrowseSessionId is found again by its value, with the other filters as well.
	v := d.cobrowse[0]
	rs, err := store.Search(ctx, agent.SearchFilter{UserDataKey: "CoBrowseSessionId", UserDataValue: v}, agent.SortStarted, true, 0, 51)
	if err != nil || len(rs) == 0 {
		t.Fatalf("CoBrowseSessionId %s: %d rows, %v", v, len(rs), err)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
