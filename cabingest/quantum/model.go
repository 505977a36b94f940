package quantum

// maxSymbols is the size of the largest model (the 42 position slots of a
// 2 MiB window would fit; the literal models have 64).
const maxSymbols = 64

const (
	freqStep     = 8    // what a decoded symbol adds to its frequency
	rescaleAbove = 3800 // a total frequency above this triggers a rescale
	firstSort    = 4    // rescales before the first re-sort
	sortEvery    = 50   // rescales between later re-sorts
)

// model is one adaptive frequency model. Symbols are kept by rank: sym[r]
// is the symbol of rank r and cum[r] the sum of the frequencies of ranks
// r..n-1, so cum[0] is the total, cum[n] is 0 and cum is strictly
// decreasing (every symbol keeps a frequency of at least 1).
type model struct {
	n         int
	untilSort int // rescales left before the next re-sort
	sym       [maxSymbols + 1]uint16
	cum       [maxSymbols + 1]uint16
}

// init gives the n symbols first..first+n-1 frequency 1 each, in order.
func (m *model) init(first, n int) {
	m.n = n
	m.untilSort = firstSort
	for r := 0; r <= n; r++ {
		m.sym[r] = uint16(first + r)
		m.cum[r] = uint16(n - r)
	}
}

// bump adds freqStep to the frequency of the symbol of rank r and
// rescales the model when its total grows too large.
func (m *model) bump(r int) {
	cum := m.cum[:r+1]
	for i := range cum {
		cum[i] += freqStep
	}
	if m.cum[0] > rescaleAbove {
		m.rescale()
	}
}

func (m *model) rescale() {
	m.untilSort--
	if m.untilSort > 0 {
		// Halve the cumulative counts from the rarest rank up, keeping
		// every frequency at least 1.
		for r := m.n - 1; r >= 0; r-- {
			half := m.cum[r] / 2
			if half <= m.cum[r+1] {
				half = m.cum[r+1] + 1
			}
			m.cum[r] = half
		}
		return
	}
	m.untilSort = sortEvery

	// Turn cumulative counts into frequencies, halved and rounded up so
	// that none drops to zero. Going up the ranks, cum[r+1] is still
	// cumulative when cum[r] is converted.
	freq := &m.cum
	for r := 0; r < m.n; r++ {
		freq[r] = (m.cum[r] - m.cum[r+1] + 1) / 2
	}
	// Order by decreasing frequency. The exact exchange pattern decides
	// where equal frequencies end up, and the encoder did the same, so
	// this must stay a plain exchange sort of ranks i < j.
	for i := 0; i < m.n-1; i++ {
		for j := i + 1; j < m.n; j++ {
			if freq[i] < freq[j] {
				freq[i], freq[j] = freq[j], freq[i]
				m.sym[i], m.sym[j] = m.sym[j], m.sym[i]
			}
		}
	}
	for r := m.n - 1; r >= 0; r-- {
		m.cum[r] += m.cum[r+1]
	}
}
