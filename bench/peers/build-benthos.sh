# Shared by the peer scripts: builds Benthos v4.38.0 from the Go module
# proxy into $work/benthos once (a plain `go install ...@v4.38.0` is refused
# because the version list is not served; a scratch module that requires it
# works). Source it after setting $work.
if [ ! -x "$work/benthos" ]; then
  echo "building Benthos v4.38.0 (first run only; takes a few minutes)..." >&2
  mkdir -p "$work/mod"
  cat > "$work/mod/go.mod" <<'MOD'
module benthospeer

go 1.26

require github.com/redpanda-data/benthos/v4 v4.38.0
MOD
  cat > "$work/mod/tools.go" <<'SRC'
//go:build tools

package tools

import _ "github.com/redpanda-data/benthos/v4/cmd/benthos"
SRC
  (cd "$work/mod" && go mod tidy >/dev/null 2>&1 && go build -o "$work/benthos" github.com/redpanda-data/benthos/v4/cmd/benthos)
fi
