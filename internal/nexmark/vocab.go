package nexmark

import (
	"math/bits"
	"sync"
)

// The vocabulary of the reference generators. Changing any of it changes
// the stream.
var (
	usStates   = [...]string{"AZ", "CA", "ID", "OR", "WA", "WY"}
	usCities   = [...]string{"Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland", "Bend", "Redmond", "Seattle", "Kent", "Cheyenne"}
	firstNames = [...]string{"Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter"}
	lastNames  = [...]string{"Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris"}

	hotChannels = [...]string{"Google", "Facebook", "Baidu", "Apple"}
)

const (
	// hotChannelsRatio: a bid comes through a hot channel with probability
	// 1 - 1/hotChannelsRatio.
	hotChannelsRatio = 2
	// numChannels is the number of other channels, "channel-0" to
	// "channel-9999".
	numChannels = 10_000
	// urlSeed seeds the java.util.Random that makes the URL of channel
	// index i (hot channels first) with urlSeed + i. The reference
	// generators draw URLs from unseeded generators; ours are fixed.
	urlSeed = 0x4e45584d41524b // "NEXMARK"
)

// appendChannel appends the name of channel index ch: the hot channels,
// then the numbered ones.
func appendChannel(dst []byte, ch int) []byte {
	if ch < len(hotChannels) {
		return append(dst, hotChannels[ch]...)
	}
	dst = append(dst, "channel-"...)
	return appendInt(dst, int64(ch-len(hotChannels)))
}

// channelURL returns the URL of channel index ch. The slice is shared:
// callers must not modify it.
func channelURL(ch int) []byte {
	t := urlTable()
	return t.text[t.off[ch]:t.off[ch+1]:t.off[ch+1]]
}

// urls holds the URL of every channel in one block: URL i is
// text[off[i]:off[i+1]].
type urls struct {
	text []byte
	off  []uint32
}

// urlTable builds the URLs once, on first use (about 700 KB).
var urlTable = sync.OnceValue(func() *urls {
	n := len(hotChannels) + numChannels
	t := &urls{text: make([]byte, 0, n*80), off: make([]uint32, n+1)}
	for ch := range n {
		t.text = appendURL(t.text, ch)
		t.off[ch+1] = uint32(len(t.text))
	}
	return t
})

// appendURL appends the URL of channel index ch: a page under
// https://www.nexmark.com/ with three random path segments and, for nine
// in ten numbered channels, the channel's id in the query (the bit-reversed
// channel number, as in the Flink generator).
func appendURL(dst []byte, ch int) []byte {
	r := newJrand(urlSeed + int64(ch))
	dst = append(dst, "https://www.nexmark.com/"...)
	for range 3 {
		dst = appendString(dst, &r, 5, '_')
		dst = append(dst, '/')
	}
	dst = append(dst, "item.htm?query=1"...)
	if k := ch - len(hotChannels); k >= 0 && r.nextInt(10) > 0 {
		id := int64(int32(bits.Reverse32(uint32(k))))
		dst = append(dst, "&channel_id="...)
		dst = appendInt(dst, max(id, -id))
	}
	return dst
}
