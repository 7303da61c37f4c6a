package web

import "encoding/json"

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

// Command is one command frame from a signed-in page's socket: {"id", "cmd", "args"}.
type Command struct {
	ID   string          `json:"id"`
	Cmd  string          `json:"cmd"`
	Args json.RawMessage `json:"args"`
}

// ReadCommand decodes a command frame. A frame that is not one (not JSON, no valid id) is
// answered with a bad_frame error frame, and ok is false.
func (c *Conn) ReadCommand(frame []byte) (cmd Command, ok bool) {
	if json.Unmarshal(frame, &cmd) != nil || !ValidCommandID(cmd.ID) {
		c.Send(Error("bad_frame", "Frames are JSON commands with an id."))
		return Command{}, false
	}
	return cmd, true
}

// CheckHello checks that cmd, a socket's first command, is the hello that proves the page came
// from us: {"cmd": "hello", "args": {"csrf": <the browser session's CSRF token>}}. When it is
// not, it answers csrf ("Reload the page."), closes the socket once the answer is written, waits
// for the close and returns false. The caller answers a good hello itself.
func (c *Conn) CheckHello(cmd Command, csrf string) bool {
	var args struct {
		CSRF string `json:"csrf"`
	}
	_ = json.Unmarshal(cmd.Args, &args)
	if cmd.Cmd == "hello" && args.CSRF != "" && args.CSRF == csrf {
		return true
	}
	c.Send(Failed(cmd.ID, "csrf", "Reload the page."))
	c.CloseAfterSend(CloseCSRF)
	<-c.Done()
	return false
}
