package metrics_test

import (
	"fmt"
	"io"
	"net/http/httptest"
	"strings"

	"github.com/opendus/opendus/devsvc/deviceapi"
	"github.com/opendus/opendus/devsvc/metrics"
	"github.com/opendus/opendus/firmware"
)

// A part of the service adds a family read at each scrape with Gauges;
// the device handlers count through the Observer the metrics implement.
func Example() {
	m := metrics.New(metrics.Config{Build: metrics.Build{Version: "v1.0.0"}})
	rollouts := map[string]int{"running": 120, "paused": 8}
	m.Gauges("opendus_rollout_devices", "Devices in rollouts, by state.", []string{"state"},
		func(emit func(v float64, labels ...string)) {
			for _, state := range []string{"running", "paused"} {
				emit(float64(rollouts[state]), state)
			}
		})
	var obs deviceapi.Observer = m // deviceapi.Config.Observer
	obs.CheckIn(firmware.Internal, deviceapi.AnswerOffered, firmware.UCPhone)

	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(w.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "opendus_rollout_devices") || strings.HasPrefix(line, `opendus_checkins_total{answer="offered",listener="internal"}`) {
			fmt.Println(line)
		}
	}
	// Output:
	// opendus_checkins_total{answer="offered",listener="internal"} 1
	// opendus_rollout_devices{state="paused"} 8
	// opendus_rollout_devices{state="running"} 120
}
