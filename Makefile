# The two commands of the README, and the pieces they are made of.
# `make run`: set up everything and open the app (on the built-in sandbox profile).
# `make test`: set up everything and pass every test, as CI does.

FEATURES := --features dropkey-app/custom-protocol
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: run test setup ui app deb rpm bindings fmt lint vectors clean

run: setup ui
	cargo build -p dropkey-app $(FEATURES)
	$(or $(CARGO_TARGET_DIR),target)/debug/dropkey-app

test: setup
	scripts/test.sh

setup:
	scripts/setup.sh all

ui:
	cd ui && npm run --silent build

app: ui
	cargo build -p dropkey-app $(FEATURES)

# The release build, packaged: target/release/bundle/deb/Dropkey_<version>_<arch>.deb
deb: setup
	cargo build --release -p dropkey
	cd ui && TAURI_APP_PATH=../src-tauri npx tauri build --bundles deb

# The same as an .rpm, installed into a throwaway root and checked (no container needed).
rpm: setup
	scripts/rpm-smoke.sh

# Regenerate ui/src/lib/bindings.ts from the Rust command types.
bindings:
	UPDATE_BINDINGS=1 cargo test -p dropkey-app $(FEATURES) bindings_are_up_to_date

fmt:
	cargo fmt --all

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets $(FEATURES) -- -D warnings
	cd ui && npm run --silent check

# Regenerate the official-SDK signing vectors (needs the npm registry).
vectors:
	cd tests/vectors && npm install --no-audit --no-fund --loglevel=error && node gen.mjs

clean:
	cargo clean
	rm -rf ui/dist ui/node_modules tests/e2e/node_modules tests/vectors/node_modules
