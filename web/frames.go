package web

// The frames both websocket surfaces answer commands with (docs/protocol.md).

// ErrorBody is an error as frames carry it: a documented code and a sentence for people.
type ErrorBody struct {
	Code        string `json:"code"`
	Description string `json:"description"`
}

// ResultFrame answers the command with the same ID.
type ResultFrame struct {
	Type  string     `json:"type"` // "result"
	ID    string     `json:"id"`
	OK    bool       `json:"ok"`
	Data  any        `json:"data,omitempty"`
	Error *ErrorBody `json:"error,omitempty"`
}

// ErrorFrame reports a problem that no command id can be given for (a frame that is not JSON).
type ErrorFrame struct {
	Type  string    `json:"type"` // "error"
	Error ErrorBody `json:"error"`
}

// Result returns the successful result of command id.
func Result(id string, data any) ResultFrame {
	return ResultFrame{Type: "result", ID: id, OK: true, Data: data}
}

// Failed returns the failed result of command id.
func Failed(id, code, description string) ResultFrame {
	return ResultFrame{Type: "result", ID: id, Error: &ErrorBody{Code: code, Description: description}}
}

// Error returns an error frame.
func Error(code, description string) ErrorFrame {
	return ErrorFrame{Type: "error", Error: ErrorBody{Code: code, Description: description}}
}

// ValidCommandID reports whether id is 1–64 printable ASCII characters.
func ValidCommandID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}
