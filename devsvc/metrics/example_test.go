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
	sites := map[string]int{"yes": 12, "no": 3} // sites served by a replica, or not
	m.Gauges("opendus_sites", "Sites, by whether a replica serves them.", []string{"by_replica"},
		func(emit func(v float64, labels ...string)) {
			for _, served := range []string{"yes", "no"} {
				emit(float64(sites[served]), served)
			}
		})
	var obs deviceapi.Observer = m // deviceapi.Config.Observer
	obs.CheckIn(firmware.Internal, deviceapi.AnswerOffered, firmware.UCPhone)

	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(w.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "opendus_sites") || strings.HasPrefix(line, `opendus_checkins_total{answer="offered",listener="internal"}`) {
			fmt.Println(line)
		}
	}
	// Output:
	// opendus_checkins_total{answer="offered",listener="internal"} 1
	// opendus_sites{by_replica="no"} 3
	// opendus_sites{by_replica="yes"} 12
}
