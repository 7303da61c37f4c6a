package agent

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"agentd"
)

// SearchFilter selects interactions for the supervisors' search (/supervisor/search,
// docs/supervisor.md). Zero fields do not filter; every set field must match.
type SearchFilter struct {
	// Text is the parsed "Text" field: each term must occur in one and the same message.
	Text []SearchTerm
	// UserDataKey and UserDataValue match a key the chat ever had (its UserData history): the
	// key alone, or the key with a value it was ever set to, exactly or, with ValuePrefix, as a
	// prefix.
	UserDataKey   string
	UserDataValue string
	ValuePrefix   bool
	Service       string     // a service name
	Agent         string     // the username of an agent who accepted the chat
	From, To      *time.Time // started at or after From, before To
	State         string
	Disposition   string // exact, case-insensitive
	CSATMin       int    // 0: any; else the survey's CSAT answer between CSATMin and CSATMax
	CSATMax       int
}

// SearchTerm is one term of a text search: a word, a "quoted phrase" or a prefix (word*). Its
// text is matched by the database's own text parser, so any characters in it are just text.
type SearchTerm struct {
	Text   string
	Phrase bool
	Prefix bool
}

// SearchSort is a sortable column of the search results.
type SearchSort string

// The sortable columns.
const (
	SortStarted     SearchSort = "started"
	SortEnded       SearchSort = "ended"
	SortDuration    SearchSort = "duration"
	SortCustomer    SearchSort = "customer"
	SortService     SearchSort = "service"
	SortState       SearchSort = "state"
	SortDisposition SearchSort = "disposition"
	SortCSAT        SearchSort = "csat"
)

// SearchSorts are the sortable columns.
var SearchSorts = []SearchSort{SortCustomer, SortService, SortStarted, SortEnded, SortDuration, SortState, SortDisposition, SortCSAT}

// SearchResult is one interaction found.
type SearchResult struct {
	ID          string
	Customer    string
	Service     string
	Agents      []string // usernames of the agents who accepted it, first first
	Started     time.Time
	Ended       *time.Time
	State       string
	Disposition string
	CSAT        string // the survey's CSAT answer, empty without one
	// Snippet is, for a text search, a short excerpt of the first matching message: the
	// matching words are wrapped in SnippetStart and SnippetStop (characters that never occur
	// in it otherwise), for the page to mark them up itself.
	Snippet string
}

// The markers of the matching words in SearchResult.Snippet: Unicode private use characters,
// removed from the message text before the excerpt is made.
const (
	SnippetStart = "\uE000"
	SnippetStop  = "\uE001"
)

// Limits of a text search.
const (
	MaxSearchText  = 200 // characters
	MaxSearchTerms = 10
)

// ParseSearchText splits the "Text" field into terms: "quoted words" are a phrase, a word
// ending in * a prefix, other words plain words. Nothing in it is an operator: &, |, !, (, :, \
// and ' are text, which the database's parser drops like any punctuation. Terms with no letter
// or digit are dropped; a text with none at all, or too long, is an error.
func ParseSearchText(s string) ([]SearchTerm, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	if utf8.RuneCountInString(s) > MaxSearchText {
		return nil, agentd.Errorf(agentd.EINVALID, "invalid_search", "Text is at most %d characters.", MaxSearchText)
	}
	var terms []SearchTerm
	add := func(t SearchTerm) {
		if strings.IndexFunc(t.Text, wordRune) >= 0 {
			terms = append(terms, t)
		}
	}
	for s != "" {
		s = strings.TrimLeftFunc(s, unicode.IsSpace)
		if s == "" {
			break
		}
		if s[0] == '"' {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				add(SearchTerm{Text: s[1:], Phrase: true})
				break
			}
			add(SearchTerm{Text: s[1 : 1+end], Phrase: true})
			s = s[2+end:]
			continue
		}
		end := strings.IndexFunc(s, unicode.IsSpace)
		if end < 0 {
			end = len(s)
		}
		w := s[:end]
		s = s[end:]
		if strings.HasSuffix(w, "*") {
			w = strings.TrimRight(w, "*")
			// A prefix is the letters and digits of the word: the parts the parser would make of
			// it, the last one a prefix.
			add(SearchTerm{Text: strings.Join(strings.FieldsFunc(strings.ToLower(w), func(r rune) bool { return !wordRune(r) }), " "), Prefix: true})
			continue
		}
		add(SearchTerm{Text: w})
	}
	if len(terms) == 0 {
		return nil, agentd.Errorf(agentd.EINVALID, "invalid_search", "Text has no words to search for: use letters or digits.")
	}
	if len(terms) > MaxSearchTerms {
		return nil, agentd.Errorf(agentd.EINVALID, "invalid_search", "Text has at most %d words or phrases.", MaxSearchTerms)
	}
	return terms, nil
}

func wordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }
