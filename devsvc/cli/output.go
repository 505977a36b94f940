package cli

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"golang.org/x/term"
)

// printJSON writes v as indented JSON, in the conventions of
// docs/cli-json.md (see encodeJSON).
func printJSON(w io.Writer, v any) error {
	b, err := encodeJSON(v, "")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// encodeJSON encodes v as indented JSON (each line after the first
// starting with prefix) in the conventions every --json follows
// (docs/cli-json.md), whatever the types' own tags say: a list that is
// empty is [] and a map {}, never null; a time that is not set (the zero
// time) is left out, never "0001-01-01T00:00:00Z". The keys are the
// types' JSON names, lowerCamelCase (TestJSONConventions checks every
// command's output).
func encodeJSON(v any, prefix string) ([]byte, error) {
	if v != nil {
		v = emptyLists(reflect.ValueOf(v)).Interface()
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if b, err = dropUnsetTimes(b); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, prefix, "  "); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

var (
	jsonMarshaler = reflect.TypeFor[json.Marshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
)

// emptyLists returns a copy of v in which every nil slice and map that
// encoding/json would write as null is an empty one. Values that encode
// themselves (json.Marshaler, encoding.TextMarshaler: versions, times,
// shares, schedules) are left as they are.
func emptyLists(v reflect.Value) reflect.Value {
	t := v.Type()
	if t.Implements(jsonMarshaler) || t.Implements(textMarshaler) ||
		reflect.PointerTo(t).Implements(jsonMarshaler) || reflect.PointerTo(t).Implements(textMarshaler) {
		return v
	}
	switch t.Kind() {
	case reflect.Slice:
		if v.IsNil() {
			return reflect.MakeSlice(t, 0, 0)
		}
		if t.Elem().Kind() == reflect.Uint8 {
			return v // []byte is a base64 string
		}
		out := reflect.MakeSlice(t, v.Len(), v.Len())
		for i := range v.Len() {
			out.Index(i).Set(emptyLists(v.Index(i)))
		}
		return out
	case reflect.Array:
		out := reflect.New(t).Elem()
		for i := range v.Len() {
			out.Index(i).Set(emptyLists(v.Index(i)))
		}
		return out
	case reflect.Map:
		if v.IsNil() {
			return reflect.MakeMap(t)
		}
		out := reflect.MakeMapWithSize(t, v.Len())
		for it := v.MapRange(); it.Next(); {
			out.SetMapIndex(it.Key(), emptyLists(it.Value()))
		}
		return out
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		out := reflect.New(t.Elem())
		out.Elem().Set(emptyLists(v.Elem()))
		return out
	case reflect.Interface:
		if v.IsNil() {
			return v
		}
		out := reflect.New(t).Elem()
		out.Set(emptyLists(v.Elem()))
		return out
	case reflect.Struct:
		out := reflect.New(t).Elem()
		out.Set(v)
		for i := range t.NumField() {
			if f := out.Field(i); f.CanSet() {
				f.Set(emptyLists(v.Field(i)))
			}
		}
		return out
	}
	return v
}

// duration writes d for --json as the flags take it and as
// time.ParseDuration reads it: "24h", "1h30m", "90s", "200ms", without
// the zero minutes and seconds of time.Duration.String ("24h0m0s").
func duration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// zeroTimeMember is how a member whose value is the zero time.Time ends
// in the compact JSON of encoding/json: the key's closing quote, the colon
// and the value. Inside a string a quote is escaped (\"), so these bytes
// occur only as such a member.
const zeroTimeMember = `":"0001-01-01T00:00:00Z"`

// dropUnsetTimes returns the compact JSON b (as json.Marshal writes it)
// without the object members whose value is the zero time: a time that
// is not set is left out.
func dropUnsetTimes(b []byte) ([]byte, error) {
	if !bytes.Contains(b, []byte(zeroTimeMember)) {
		return b, nil
	}
	out := make([]byte, 0, len(b))
	for {
		i := bytes.Index(b, []byte(zeroTimeMember))
		if i < 0 {
			return append(out, b...), nil
		}
		// The key's opening quote: the last quote before i that no
		// backslash escapes.
		start := -1
		for j := i - 1; j >= 0; j-- {
			if b[j] != '"' {
				continue
			}
			k := j
			for k > 0 && b[k-1] == '\\' {
				k--
			}
			if (j-k)%2 == 0 {
				start = j
				break
			}
		}
		if start <= 0 {
			return nil, fmt.Errorf("dropping unset times: no key before offset %d", i)
		}
		end := i + len(zeroTimeMember)
		switch {
		case b[start-1] == ',':
			start-- // ,"key":"0001-..."
		case end < len(b) && b[end] == ',':
			end++ // {"key":"0001-...",
		}
		out = append(out, b[:start]...)
		b = b[end:]
	}
}

// table writes aligned columns; a header row first.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	t.row(header...)
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		if c == "" {
			cells[i] = "-"
		}
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// when formats a time for tables: local, to the minute; "-" for none.
func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04")
}

// isTerminal reports whether w is a terminal (progress bars only there).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progressBar draws "label  42% [#####.....] 12.0/28.5 MB  9.1 MB/s" on a
// terminal, redrawing at most ten times a second, and nothing elsewhere.
type progressBar struct {
	w     io.Writer
	label string
	on    bool
	start time.Time

	mu   sync.Mutex
	last time.Time
}

func newProgress(w io.Writer, label string) *progressBar {
	return &progressBar{w: w, label: label, on: isTerminal(w), start: time.Now()}
}

func (p *progressBar) update(done, total int64) {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if now.Sub(p.last) < 100*time.Millisecond && done != total {
		return
	}
	p.last = now
	const width = 30
	frac := 0.0
	if total > 0 {
		frac = float64(done) / float64(total)
	}
	n := int(frac * width)
	rate := float64(done) / now.Sub(p.start).Seconds() / 1e6
	fmt.Fprintf(p.w, "\r%s %3.0f%% [%s%s] %.1f/%.1f MB %.1f MB/s ", p.label, frac*100,
		strings.Repeat("#", n), strings.Repeat(".", width-n), float64(done)/1e6, float64(total)/1e6, rate)
}

func (p *progressBar) done() {
	if p.on {
		fmt.Fprintln(p.w)
	}
}
