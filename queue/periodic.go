package queue

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// cronParser reads standard five-field expressions, six with a leading
// seconds field, and the descriptors (@hourly, @daily, @every 30s).
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Schedule parses the cron expression in the config's time zone. Its
// errors name the field (periodic.cron, periodic.time_zone).
func (p *PeriodicConfig) Schedule() (*Schedule, error) {
	loc, err := time.LoadLocation(p.TimeZone)
	if err != nil || strings.HasPrefix(p.TimeZone, "Local") {
		return nil, Invalid("periodic.time_zone", fmt.Sprintf("unknown time zone %q", p.TimeZone), "use an IANA zone such as UTC or Europe/Berlin")
	}
	expr := strings.TrimSpace(p.Cron)
	if strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ=") {
		return nil, Invalid("periodic.cron", "the expression names a time zone", "give it as periodic.time_zone instead")
	}
	s, err := cronParser.Parse(expr)
	if err != nil {
		return nil, Invalid("periodic.cron", fmt.Sprintf("%q is not a cron expression: %v", p.Cron, err),
			`write five fields ("*/5 * * * *"), six with seconds first, or @hourly, @daily, @every 30s`)
	}
	// A schedule that never fires (Feb 30) would search for ever.
	probe := time.Date(2000, 1, 1, 0, 0, 0, 0, loc)
	if next := s.Next(probe); next.IsZero() {
		return nil, Invalid("periodic.cron", fmt.Sprintf("%q never fires", p.Cron), "check the day and month fields")
	}
	if d := s.Next(s.Next(probe)).Sub(s.Next(probe)); d > 0 && d < time.Second {
		return nil, Invalid("periodic.cron", fmt.Sprintf("%q fires more often than once a second", p.Cron), "use @every 1s or longer")
	}
	return &Schedule{s: s, loc: loc}, nil
}

// Schedule is a parsed periodic schedule.
type Schedule struct {
	s   cron.Schedule
	loc *time.Location
}

// Next is the first tick strictly after t. Ticks fall on whole seconds, so
// every coordinator that computes the next tick from the same stored one
// finds the same time.
func (s *Schedule) Next(t time.Time) time.Time {
	return s.s.Next(t.In(s.loc).Truncate(time.Second)).UTC()
}

// maxCatchUp bounds the ticks Due walks through after a long outage.
const maxCatchUp = 100000

// Due returns the latest tick after last that is not later than now (ok
// false if none is due yet), how many earlier due ticks it passed over,
// and the tick after now, when the schedule should next be looked at. At
// most one launch follows an outage, for the latest tick missed.
func (s *Schedule) Due(last, now time.Time) (tick time.Time, skipped int, ok bool, next time.Time) {
	t := s.Next(last)
	for i := 0; !t.After(now) && i < maxCatchUp; i++ {
		if ok {
			skipped++
		}
		tick, ok = t, true
		t = s.Next(t)
	}
	for t.Before(now) || t.Equal(now) { // past maxCatchUp: jump to now
		t = s.Next(now)
	}
	return tick, skipped, ok, t
}
