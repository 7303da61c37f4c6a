package postgres

// SearchPageSQL exposes the statement of a search page to the search benchmark, which explains
// the slowest run of each query kind (AGENTD_BENCH_SEARCH_EXPLAIN).
var SearchPageSQL = searchPageSQL
