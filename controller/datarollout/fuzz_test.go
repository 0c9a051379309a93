package datarollout

import (
	"strings"
	"testing"
	"time"

	"github.com/autocrane/autocrane/spec"
)

// FuzzParseState: whatever is in the ConfigMap, an accepted state holds only
// valid versions and encodes back to something that parses to it.
func FuzzParseState(f *testing.F) {
	full, _ := State{Line: testLine, LKG: lkg(ver(2)), Previous: lkg(ver(1)),
		Rollout: rolling(ver(4), map[string]GroupProgress{webGroup.Key: at(1, t0)}),
		Bad:     []BadVersion{{Version: ver(3), At: t0, Reason: "error"}}}.Marshal()
	f.Add(full)
	f.Add(`{"schema":1,"namespace":"team-a","storeURL":"http://datarepository.team-a.svc:9790","source":"models"}`)
	f.Add(`{"schema":1,"lkg":{"id":"v1","digest":"sha256:00"}}`)
	f.Add(`null`)
	f.Fuzz(func(t *testing.T, data string) {
		st, err := ParseState(data, testLine)
		if err != nil {
			return
		}
		for _, v := range st.Pins() {
			if spec.ValidateVersionID(v) != nil {
				t.Fatalf("accepted an invalid version %q", v)
			}
		}
		out, err := st.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseState(out, testLine); err != nil {
			t.Fatalf("an accepted state does not encode back: %v\n%s", err, out)
		}
	})
}

func FuzzParseControl(f *testing.F) {
	f.Add("true", "v1,v2")
	f.Add("false", "")
	f.Add("yes", ",,")
	f.Fuzz(func(t *testing.T, paused, reject string) {
		c, err := ParseControl(map[string]string{KeyPaused: paused, KeyReject: reject})
		if err != nil {
			return
		}
		for _, id := range c.Reject {
			if spec.ValidateVersionID(id) != nil {
				t.Fatalf("accepted an invalid reject %q", id)
			}
		}
	})
}

// FuzzDecodeSource: a repository's answer yields only valid versions.
func FuzzDecodeSource(f *testing.F) {
	f.Add(sourceBody("models", ver(1), ver(2)))
	f.Add(`{"name":"models","versions":[{"id":"v1","digest":"sha256:` + strings.Repeat("0", 64) + `"}],"pins":["x"]}`)
	f.Add(`{"versions":null}`)
	f.Fuzz(func(t *testing.T, body string) {
		c, err := decodeSource([]byte(body), "models")
		if err != nil {
			return
		}
		for _, v := range c.Versions {
			if v.validate() != nil {
				t.Fatalf("accepted an invalid version %+v", v)
			}
		}
	})
}

// FuzzStatusValues: nothing a datadeployer answers puts a value into an
// annotation that the status format does not accept.
func FuzzStatusValues(f *testing.F) {
	f.Add(deployerBody)
	f.Add(`{"deployments":[{"name":"models","state":"failed","error":"a\nb/c"}]}`)
	f.Add(`{"deployments":[{"name":"models","state":"live","since":"0001-01-01T00:00:00Z"}]}`)
	f.Fuzz(func(t *testing.T, body string) {
		st, err := decodeDeployerStatus([]byte(body))
		if err != nil {
			return
		}
		for k, v := range StatusValues(nil, []string{"models", "tables"}, st) {
			if !strings.HasPrefix(k, spec.PrefixDataStatus) {
				t.Fatalf("wrote key %q", k)
			}
			if _, err := spec.ParseDataStatus(v); err != nil {
				t.Fatalf("wrote %q, which does not parse: %v", v, err)
			}
		}
	})
}

// FuzzDecide feeds arbitrary requests, statuses and health to a rolling
// line: the decision must not panic, must write only well-formed requests
// for the line's source, and its state must persist.
func FuzzDecide(f *testing.F) {
	f.Add(ver(2).Request("models"), liveStatus(ver(2), t0), "error", uint8(1), int64(60))
	f.Add("garbage", "live/-/-/-/", "", uint8(0), int64(-5))
	f.Add("", "", "warning", uint8(3), int64(100000))
	f.Fuzz(func(t *testing.T, request, status, health string, wave uint8, ago int64) {
		st := State{Line: testLine, LKG: lkg(ver(1)), Rollout: rolling(ver(2), map[string]GroupProgress{webGroup.Key: at(int(wave%8), t0.Add(-time.Duration(ago)*time.Second))})}
		slots := pods(3, on(ver(1), t0.Add(-time.Hour)))
		slots = append(slots, slot("web-x", func(s *Slot) { s.Request, s.Status, s.Health = request, status, health }))
		d := Decide(Input{Now: t0, Line: testLine, State: st, Persisted: true, Slots: slots, Catalog: reachable(1, 2, 3), ProgressDeadline: deadline})
		for _, c := range d.Changes {
			if c.To == "" {
				continue
			}
			r, err := spec.ParseDataRequest(c.To)
			if err != nil || r.Source != "models" {
				t.Fatalf("wrote request %q", c.To)
			}
		}
		data, err := d.State.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseState(data, testLine); err != nil {
			t.Fatalf("decided a state that does not persist: %v", err)
		}
	})
}
