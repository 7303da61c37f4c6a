package postgres

import (
	"context"

	"agentd/agent"
)

// SearchPageSQL exposes the statement of a search page to the search benchmark, which explains
// the slowest run of each query kind (AGENTD_BENCH_SEARCH_EXPLAIN).
var SearchPageSQL = searchPageSQL

// TextMatches exposes the text probe, for the benchmark to explain the statement the page ran.
func (s *SearchStore) TextMatches(ctx context.Context, f agent.SearchFilter) ([]string, error) {
	return s.textMatches(ctx, f)
}
