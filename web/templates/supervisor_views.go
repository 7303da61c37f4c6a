package templates

// View models of the supervisor pages (web/supervisor). Handlers fill them; the components only
// render them, so every string reaching the page passes through templ's escaping.

// SupervisorRow is one interaction of /supervisor's recent list.
type SupervisorRow struct {
	ID, Customer, Service, State, Agents, Started, Ended string
}

// SupervisorReview is the review of one interaction, /supervisor/interactions/{id}.
type SupervisorReview struct {
	ID, Customer, Service, State, Started, Ended string
	Agents                                       []string
	Transcript                                   []SupervisorEvent
	UserData                                     []SupervisorEntry
	Changes                                      []SupervisorChange
	Notices                                      []SupervisorNotice
	CoBrowse                                     []SupervisorCoBrowse
	Survey                                       []SurveyAnswer
	Disposition, Notes, WrapAgent                string
	Audit                                        []SupervisorAudit
}

// SupervisorEvent is one transcript entry.
type SupervisorEvent struct {
	Time, Kind, Party, PartyType, Text, Reason string
}

// SupervisorEntry is one current UserData key.
type SupervisorEntry struct {
	Key, Value, Owner, Visibility, Updated string
}

// SupervisorChange is one UserData history entry.
type SupervisorChange struct {
	Time, Key, Op, Old, New, By string
}

// SupervisorNotice is one custom notice.
type SupervisorNotice struct {
	Time, From, Audience, Payload string
}

// SupervisorCoBrowse is one co-browse step: a session id set in UserData, an agent joining.
type SupervisorCoBrowse struct {
	Time, What, By string
}

// SupervisorAudit is one audit row of the interaction.
type SupervisorAudit struct {
	Time, Who, Action, Details string
}
