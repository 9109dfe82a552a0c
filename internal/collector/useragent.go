package collector

import (
	"bytes"

	lru "github.com/hashicorp/golang-lru/v2"
)

// userAgent is what the collector derives from a User-Agent header: the
// browser (or bot, or client library) family, the operating system and the
// device class. Each is an index into its names table, so results are
// small, comparable and their header values are shared.
type userAgent struct {
	browser, os, device uint8
}

// Browser families. Bots and client libraries are named like browsers:
// ua_browser says who is sending.
const (
	browserOther uint8 = iota
	browserChrome
	browserFirefox
	browserSafari
	browserEdge
	browserOpera
	browserSamsung
	browserIE
	browserYandex
	browserUC
	browserGooglebot
	browserBingbot
	browserYandexBot
	browserBaiduspider
	browserDuckDuckBot
	browserApplebot
	browserFacebook
	browserCurl
	browserWget
	browserPython
	browserGo
	browserHeadless
	browserOtherBot
)

var browserNames = [...]string{
	browserOther:       "Other",
	browserChrome:      "Chrome",
	browserFirefox:     "Firefox",
	browserSafari:      "Safari",
	browserEdge:        "Edge",
	browserOpera:       "Opera",
	browserSamsung:     "Samsung Internet",
	browserIE:          "Internet Explorer",
	browserYandex:      "Yandex Browser",
	browserUC:          "UC Browser",
	browserGooglebot:   "Googlebot",
	browserBingbot:     "Bingbot",
	browserYandexBot:   "YandexBot",
	browserBaiduspider: "Baiduspider",
	browserDuckDuckBot: "DuckDuckBot",
	browserApplebot:    "Applebot",
	browserFacebook:    "Facebook crawler",
	browserCurl:        "curl",
	browserWget:        "Wget",
	browserPython:      "Python",
	browserGo:          "Go",
	browserHeadless:    "Headless Chrome",
	browserOtherBot:    "Other bot",
}

// Operating systems.
const (
	osOther uint8 = iota
	osWindows
	osMacOS
	osIOS
	osAndroid
	osLinux
	osChromeOS
	osWindowsPhone
)

var osNames = [...]string{
	osOther:        "Other",
	osWindows:      "Windows",
	osMacOS:        "macOS",
	osIOS:          "iOS",
	osAndroid:      "Android",
	osLinux:        "Linux",
	osChromeOS:     "Chrome OS",
	osWindowsPhone: "Windows Phone",
}

// Device classes.
const (
	deviceOther uint8 = iota
	deviceDesktop
	deviceMobile
	deviceTablet
	deviceBot
)

var deviceNames = [...]string{
	deviceOther:   "other",
	deviceDesktop: "desktop",
	deviceMobile:  "mobile",
	deviceTablet:  "tablet",
	deviceBot:     "bot",
}

// Header values, shared by every record: the log copies them.
var (
	browserValues = byteTable(browserNames[:])
	osValues      = byteTable(osNames[:])
	deviceValues  = byteTable(deviceNames[:])
)

func byteTable(names []string) [][]byte {
	t := make([][]byte, len(names))
	for i, n := range names {
		t[i] = []byte(n)
	}
	return t
}

// token maps a substring of a User-Agent to a family.
type token struct {
	sub []byte
	id  uint8
}

func tok(sub string, id uint8) token { return token{[]byte(sub), id} }

// Checked in order: the first match wins. Tokens are matched against the
// lower-cased header.
var (
	botTokens = []token{
		tok("googlebot", browserGooglebot),
		tok("google-inspectiontool", browserGooglebot),
		tok("bingbot", browserBingbot),
		tok("yandexbot", browserYandexBot),
		tok("baiduspider", browserBaiduspider),
		tok("duckduckbot", browserDuckDuckBot),
		tok("applebot", browserApplebot),
		tok("facebookexternalhit", browserFacebook),
		tok("headlesschrome", browserHeadless),
		tok("curl/", browserCurl),
		tok("wget/", browserWget),
		tok("python-requests/", browserPython),
		tok("python-urllib/", browserPython),
		tok("aiohttp/", browserPython),
		tok("go-http-client/", browserGo),
		tok("bot/", browserOtherBot),
		tok("bot;", browserOtherBot),
		tok("bot)", browserOtherBot),
		tok("crawler", browserOtherBot),
		tok("spider", browserOtherBot),
		tok("slurp", browserOtherBot),
		tok("+http", browserOtherBot), // crawlers name a contact URL
	}
	// Browsers embed the tokens of those they imitate ("Chrome/... Safari/"),
	// so the most specific come first.
	browserTokens = []token{
		tok("edg/", browserEdge),
		tok("edge/", browserEdge),
		tok("edga/", browserEdge),
		tok("edgios/", browserEdge),
		tok("opr/", browserOpera),
		tok("opera", browserOpera),
		tok("samsungbrowser/", browserSamsung),
		tok("yabrowser/", browserYandex),
		tok("ucbrowser/", browserUC),
		tok("firefox/", browserFirefox),
		tok("fxios/", browserFirefox),
		tok("crios/", browserChrome),
		tok("chrome/", browserChrome),
		tok("chromium/", browserChrome),
		tok("msie ", browserIE),
		tok("trident/", browserIE),
		tok("safari/", browserSafari),
	}
	osTokens = []token{
		tok("windows phone", osWindowsPhone),
		tok("windows", osWindows),
		tok("iphone", osIOS),
		tok("ipad", osIOS),
		tok("ipod", osIOS),
		tok("android", osAndroid),
		tok("cros ", osChromeOS),
		tok("mac os x", osMacOS),
		tok("macintosh", osMacOS),
		tok("linux", osLinux),
	}
)

// maxUALen is how much of a User-Agent is looked at.
const maxUALen = 512

// parseUserAgent classifies a User-Agent header. It knows the common
// browsers, operating systems and crawlers; anything else is "Other".
// iPads that ask for desktop sites send a macOS User-Agent and are
// reported as such.
func parseUserAgent(h string) userAgent {
	if len(h) > maxUALen {
		h = h[:maxUALen]
	}
	var buf [maxUALen]byte
	n := copy(buf[:], h)
	for i := range n {
		if c := buf[i]; c >= 'A' && c <= 'Z' {
			buf[i] = c + 'a' - 'A'
		}
	}
	s := buf[:n]
	var ua userAgent
	ua.os = match(s, osTokens, osOther)
	if b := match(s, botTokens, browserOther); b != browserOther {
		ua.browser, ua.device = b, deviceBot
		return ua
	}
	ua.browser = match(s, browserTokens, browserOther)
	if ua.browser == browserSafari && !bytes.Contains(s, []byte("version/")) && ua.os != osIOS {
		ua.browser = browserOther // WebKit embedded in an app
	}
	switch {
	case bytes.Contains(s, []byte("ipad")) || bytes.Contains(s, []byte("tablet")) || bytes.Contains(s, []byte("kindle")) || bytes.Contains(s, []byte("silk/")):
		ua.device = deviceTablet
	case ua.os == osAndroid && !bytes.Contains(s, []byte("mobile")):
		ua.device = deviceTablet
	case bytes.Contains(s, []byte("mobi")) || bytes.Contains(s, []byte("iphone")) || bytes.Contains(s, []byte("ipod")) || ua.os == osWindowsPhone:
		ua.device = deviceMobile
	case ua.os == osWindows || ua.os == osMacOS || ua.os == osLinux || ua.os == osChromeOS:
		ua.device = deviceDesktop
	}
	return ua
}

func match(s []byte, tokens []token, none uint8) uint8 {
	for _, t := range tokens {
		if bytes.Contains(s, t.sub) {
			return t.id
		}
	}
	return none
}

// uaParser caches parse results by header value.
type uaParser struct {
	cache *lru.Cache[string, userAgent] // nil: no cache
}

func newUAParser(size int) (*uaParser, error) {
	if size == 0 {
		return &uaParser{}, nil
	}
	c, err := lru.New[string, userAgent](size)
	if err != nil {
		return nil, err
	}
	return &uaParser{cache: c}, nil
}

func (p *uaParser) parse(h string) userAgent {
	if p.cache == nil {
		return parseUserAgent(h)
	}
	if ua, ok := p.cache.Get(h); ok {
		return ua
	}
	ua := parseUserAgent(h)
	p.cache.Add(h, ua)
	return ua
}
