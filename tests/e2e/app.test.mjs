// End-to-end test: the real Dropkey app, driven through tauri-driver + WebKitWebDriver.
//
// Run from the repository root, after `npm install` in tests/e2e and a build of the app with
// the embedded UI (`--features dropkey-app/custom-protocol`), under a display and with a
// Secret Service for the keychain lookups (without one the app shows a keychain error):
//
//   xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- bash -c '
//     export XDG_DATA_HOME="$(mktemp -d)"
//     echo -n ci | gnome-keyring-daemon --unlock --components=secrets >/dev/null
//     node --test tests/e2e/'
//
// What it covers: the profiles and where their keys come from; files queued through the
// window's paste handler and through the clipboard command, uploaded to the local sandbox the app
// starts in-process, and listed in History with links whose bytes match; a key set in Settings
// landing in the keychain with only "set" in the page; a configured watched folder uploading a
// new file; the tray's actions (pause/resume watching, upload the clipboard, copy the last URL)
// through the commands the tray menu shares with the window.
//
// Files are queued the way a user pastes them: the test puts their paths on the real X
// clipboard with xclip (what a file manager's "Copy" does), then sends the window a paste event
// (Ctrl+V); the window asks Rust to read the clipboard (`upload_clipboard`), so no path ever
// comes from the page. A native drag and drop cannot be synthesised through WebDriver (Tauri
// takes the drop from GTK before the page sees it). The page may not name paths itself: a test
// calls `enqueue_files`, `add_watch` and `copy_text` with a path it made up and expects refusals.
// Global shortcuts are pressed with xdotool (XTEST), and a key "taken by another application" is
// one a small python3 + libX11 client grabs first.
// "Copy last URL" is checked by pasting (Ctrl+V) into a text field; "Open" by a fake browser
// that notes the URLs it is given (it is the file manager too, for "Open folder"). Folders are
// added to watch through the native folder chooser, typed into with xdotool.
//
// Environment:
//   DROPKEY_APP              app binary (default: <repo>/target/debug/dropkey-app)
//   DROPKEY_BIN              CLI binary for `key status` (default: <repo>/target/debug/dropkey)
//   TAURI_DRIVER             tauri-driver binary (default: on PATH, else ~/.cargo/bin/tauri-driver)
//   DROPKEY_E2E_SCREENSHOTS  if set, PNGs of the main screens are saved in that directory
//                            (with WebKit's compositing on: see appEnv)

import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { accessSync, constants, existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import net from "node:net";
import zlib from "node:zlib";
import { homedir, tmpdir } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

import { remote } from "webdriverio";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const APP = resolve(process.env.DROPKEY_APP ?? join(REPO, "target/debug/dropkey-app"));
const CLI = resolve(process.env.DROPKEY_BIN ?? join(REPO, "target/debug/dropkey"));
const SECRET = "shhh-e2e-secret-value";
/** Typed into Settings for profile `ik`; must reach the keychain and nothing else. */
const TYPED_SECRET = `private_e2e_${randomBytes(9).toString("hex")}`;
/** Typed into the "Add a profile" form for profile `added`. */
const ADDED_SECRET = `private_e2e_added_${randomBytes(9).toString("hex")}`;
const SHOTS = process.env.DROPKEY_E2E_SCREENSHOTS;
/** axe-core, injected once into the window to check it against WCAG 2.2 A and AA. */
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/** A `size`x`size` PNG with a diagonal two-colour gradient (a real image for History), with
 * `text` as tEXt chunks (keyword → value), as cameras' and editors' metadata. */
function makePng(size, [r1, g1, b1], [r2, g2, b2], text = {}) {
  const rows = [];
  for (let y = 0; y < size; y += 1) {
    const row = Buffer.alloc(1 + size * 3);
    for (let x = 0; x < size; x += 1) {
      const t = (x + y) / (2 * size - 2);
      row[1 + x * 3] = Math.round(r1 + (r2 - r1) * t);
      row[2 + x * 3] = Math.round(g1 + (g2 - g1) * t);
      row[3 + x * 3] = Math.round(b1 + (b2 - b1) * t);
    }
    rows.push(row);
  }
  const chunk = (type, data) => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(data.length, 0);
    head.write(type, 4, "ascii");
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(Buffer.concat([head.subarray(4), data])), 0);
    return Buffer.concat([head, data, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    ...Object.entries(text).map(([key, value]) => chunk("tEXt", Buffer.from(`${key}\0${value}`, "latin1"))),
    chunk("IDAT", zlib.deflateSync(Buffer.concat(rows))),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

const config = (port, watched, deadPort) => `[sandbox]
listen = "127.0.0.1:${port}"

[[watch]]
path = "${watched}"
profile = "sandbox"

[profiles.ik]
provider = "imagekit"
auth = "v2"
public_key = "public_e2e"
url_endpoint = "https://ik.imagekit.io/e2e"
folder = "/uploads/chat"
tags = ["chat", "media"]

[profiles.cl]
provider = "cloudinary"
cloud_name = "demo"
api_key = "1234"
folder = "kyc/1"
tags = ["kyc"]

# A provider that cannot be reached (nothing listens there): the offline banner's test.
[profiles.far]
provider = "imagekit"
auth = "v1"
public_key = "public_far"
url_endpoint = "https://ik.imagekit.io/far"
upload_url = "http://127.0.0.1:${deadPort}/api/v1/files/upload"
`;

const PORT_TIMEOUT_MS = 20_000;
const UI_TIMEOUT_MS = 30_000;

/** tauri-driver: $TAURI_DRIVER, else on PATH, else where `cargo install` puts it. */
function findTauriDriver() {
  if (process.env.TAURI_DRIVER) return process.env.TAURI_DRIVER;
  for (const dir of (process.env.PATH ?? "").split(delimiter).filter(Boolean)) {
    const candidate = join(dir, "tauri-driver");
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return join(homedir(), ".cargo", "bin", "tauri-driver");
}

/** A TCP port that was free a moment ago. */
function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = net.createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

function canConnect(port) {
  return new Promise((resolveConnect) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolveConnect(true);
    });
    socket.once("error", () => resolveConnect(false));
  });
}

/** Polls until `port` accepts connections; fails early if `child` exits first. */
async function waitForPort(port, child, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`tauri-driver exited (${child.exitCode ?? child.signalCode}) before listening`);
    }
    if (await canConnect(port)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`tauri-driver did not listen on port ${port} within ${timeoutMs} ms`);
}

/** Ends tauri-driver and everything it started (WebKitWebDriver, the app). */
async function stopProcessGroup(child) {
  if (!child) return;
  // Grandchildren may hold the pipes open: never let them keep this process alive.
  child.stdout?.destroy();
  child.stderr?.destroy();
  child.unref();
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  const signal = (sig) => {
    try {
      process.kill(-child.pid, sig); // the whole group: spawned with `detached: true`
    } catch {
      child.kill(sig);
    }
  };
  signal("SIGTERM");
  const timer = setTimeout(() => signal("SIGKILL"), 3_000);
  await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000).unref())]);
  clearTimeout(timer);
}

/** The app's environment: the test's config and data dir, and no DROPKEY_* from outside. */
function appEnv(tmp) {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !key.startsWith("DROPKEY_")),
  );
  return {
    ...env,
    DROPKEY_CONFIG: join(tmp, "config.toml"),
    DROPKEY_DATA_DIR: join(tmp, "data"),
    DROPKEY_SECRET_CL: SECRET,
    DROPKEY_SECRET_FAR: SECRET,
    // "Open in browser" reaches this fake browser, which notes each URL in a file: through
    // xdg-open's scheme handler (mimeapps.list + a .desktop file) and, without a display, $BROWSER.
    BROWSER: join(tmp, "fake-browser.sh"),
    XDG_DATA_HOME: join(tmp, "xdg-data"),
    ...(process.env.DROPKEY_LOG ? { DROPKEY_LOG: process.env.DROPKEY_LOG } : {}),
    // Window state and autostart files stay in the test's directory.
    XDG_CONFIG_HOME: join(tmp, "xdg-config"),
    // WebKitWebDriver's screenshot never answers on the History screen when WebKit composites
    // nothing (the app's default without a GPU; the window itself paints it, checked with an X
    // grab), so screenshots for docs/ are taken with compositing on.
    ...(SHOTS && env.WEBKIT_DISABLE_COMPOSITING_MODE === undefined ? { WEBKIT_DISABLE_COMPOSITING_MODE: "0" } : {}),
  };
}

/** Waits for `check` to return something truthy (retrying on errors), or fails with `what`. */
async function eventually(check, what, timeoutMs = UI_TIMEOUT_MS) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out: ${what}${last ? ` (${last.message})` : ""}`);
}

/** Starts tauri-driver with the app's environment for `tmp` and opens a WebDriver session on
 * the app; `log` gets what the driver (and the app through it) prints. */
async function openSession(tmp, log) {
  const port = await freePort();
  let nativePort = await freePort();
  while (nativePort === port) nativePort = await freePort();
  let printed = "";
  const note = (text) => {
    printed = (printed + text).slice(-20_000);
    log(text);
  };
  const driver = spawn(
    findTauriDriver(),
    ["--port", String(port), "--native-port", String(nativePort)],
    { env: appEnv(tmp), detached: true, stdio: ["ignore", "pipe", "pipe"] },
  );
  driver.on("error", (err) => note(`\nspawn error: ${err.message}`));
  for (const stream of [driver.stdout, driver.stderr]) {
    stream.setEncoding("utf8");
    stream.on("data", note);
  }
  try {
    await waitForPort(port, driver, PORT_TIMEOUT_MS);
    // tauri-driver starts WebKitWebDriver on the native port and connects to it only when the
    // session is asked for, without retrying: a second session started right after the first
    // can ask before WebKitWebDriver listens (seen in CI as a refused connection).
    await waitForPort(nativePort, driver, PORT_TIMEOUT_MS);
    const browser = await remote({
      hostname: "127.0.0.1",
      port,
      logLevel: "warn",
      connectionRetryCount: 0,
      connectionRetryTimeout: 45_000,
      capabilities: {
        "wdio:enforceWebDriverClassic": true,
        "tauri:options": { application: APP },
      },
    });
    return { driver, browser };
  } catch (err) {
    await stopProcessGroup(driver);
    throw new Error(`${err.message}\n${printed}`);
  }
}

/** Ends the WebDriver session, tauri-driver and the app, and removes the test's directory. */
async function closeSession(browser, driver, tmp) {
  try {
    if (browser) await browser.deleteSession().catch(() => {});
  } finally {
    await stopProcessGroup(driver);
    if (tmp) await rm(tmp, { recursive: true, force: true });
  }
}

/** Fails with axe-core's serious and critical WCAG 2.2 A/AA findings on the window as it
 * is now (`state` names it in the message: each rule, why, and the first elements). */
async function checkAccessible(browser, state) {
  if (!(await browser.execute(() => typeof window.axe === "object"))) {
    await browser.execute(`${AXE_SOURCE}\nreturn true;`);
  }
  const found = await browser.executeAsync((done) => {
    const tags = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"];
    window.axe.run(document, { runOnly: { type: "tag", values: tags }, resultTypes: ["violations"] }).then(
      (result) =>
        done(
          result.violations
            .filter((v) => v.impact === "serious" || v.impact === "critical")
            .map((v) => `${v.id} (${v.impact}): ${v.help}\n${v.nodes.slice(0, 4).map((node) => `    ${node.target.join(" ")}: ${(node.failureSummary ?? "").replace(/\s+/g, " ")}`).join("\n")}`),
        ),
      (err) => done([`axe did not run: ${err}`]),
    );
  });
  assert.deepEqual(found, [], `${state}: ${found.length} serious or critical accessibility findings\n${found.join("\n")}`);
  // What axe does not check (WCAG 1.4.11): a field's outline at 3:1 against the field and
  // against what surrounds it, so a field can be found without its text.
  const fields = await browser.execute(() => {
    const parse = (value) => {
      const rgb = value.match(/^rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)(?:,\s*([\d.]+))?\)$/);
      if (rgb) return { rgb: rgb.slice(1, 4).map((n) => Number(n) / 255), alpha: rgb[4] === undefined ? 1 : Number(rgb[4]) };
      const srgb = value.match(/^color\(srgb ([\d.]+) ([\d.]+) ([\d.]+)(?: \/ ([\d.]+))?\)$/);
      if (srgb) return { rgb: srgb.slice(1, 4).map(Number), alpha: srgb[4] === undefined ? 1 : Number(srgb[4]) };
      return null;
    };
    const luminance = ([r, g, b]) =>
      [r, g, b].map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4)).reduce((sum, c, i) => sum + c * [0.2126, 0.7152, 0.0722][i], 0);
    const ratio = (a, b) => {
      const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
      return (hi + 0.05) / (lo + 0.05);
    };
    /** The first opaque background at or above `el`. */
    const background = (el) => {
      for (let node = el; node; node = node.parentElement) {
        const color = parse(getComputedStyle(node).backgroundColor);
        if (color && color.alpha === 1) return color.rgb;
      }
      return null;
    };
    const low = [];
    let checked = 0;
    for (const field of document.querySelectorAll('input:not([type="checkbox"]):not([type="radio"]):not([type="hidden"]), select, textarea')) {
      const box = field.getBoundingClientRect();
      if (box.width === 0 || box.height === 0 || field.disabled) continue;
      const border = parse(getComputedStyle(field).borderTopColor);
      const inside = background(field);
      const around = background(field.parentElement);
      if (!border || !inside || !around) continue;
      checked += 1;
      const worst = Math.min(ratio(border.rgb, inside), ratio(border.rgb, around));
      if (worst < 3) low.push(`${field.outerHTML.slice(0, 100)}: ${worst.toFixed(2)}:1`);
    }
    return { checked, low };
  });
  assert.deepEqual(fields.low, [], `${state}: fields whose outline is under 3:1\n${fields.low.join("\n")}`);
  return fields.checked;
}

// The UI's order (ui/src/lib/profiles.ts `sortProfiles`): default first, then by name.
const byName = new Intl.Collator("en", { numeric: true, sensitivity: "base" });
function uiOrder(profiles) {
  return [...profiles]
    .sort(
      (a, b) =>
        Number(b.isDefault) - Number(a.isDefault) ||
        byName.compare(a.name, b.name) ||
        (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
    )
    .map((p) => p.name);
}

// The suite's time limit covers all of its tests (each inherits it too).
describe("Dropkey app", { timeout: 300_000 }, () => {
  let tmp;
  let driver;
  let driverLog = "";
  let browser;

  before(async () => {
    assert.ok(
      existsSync(APP),
      `app binary not found: ${APP} (build it with the custom-protocol feature or set DROPKEY_APP)`,
    );
    tmp = await mkdtemp(join(tmpdir(), "dropkey-e2e-"));
    await mkdir(join(tmp, "watched"));
    await mkdir(join(tmp, "in"));
    await mkdir(join(tmp, "data"));
    await writeFile(join(tmp, "config.toml"), config(await freePort(), join(tmp, "watched"), await freePort()));
    await mkdir(join(tmp, "xdg-data", "applications"), { recursive: true });
    await mkdir(join(tmp, "xdg-config"), { recursive: true });
    const fakeBrowser = join(tmp, "fake-browser.sh");
    await writeFile(fakeBrowser, `#!/bin/sh\nprintf '%s\\n' "$1" >> '${join(tmp, "opened.txt")}'\n`, { mode: 0o755 });
    await writeFile(
      join(tmp, "xdg-data", "applications", "dropkey-fake-browser.desktop"),
      `[Desktop Entry]\nType=Application\nName=Fake browser\nExec=${fakeBrowser} %u\nMimeType=x-scheme-handler/http;x-scheme-handler/https;inode/directory;\n`,
    );
    await writeFile(
      join(tmp, "xdg-config", "mimeapps.list"),
      "[Default Applications]\nx-scheme-handler/http=dropkey-fake-browser.desktop\nx-scheme-handler/https=dropkey-fake-browser.desktop\ninode/directory=dropkey-fake-browser.desktop\n",
    );

    ({ driver, browser } = await openSession(tmp, (text) => {
      driverLog = (driverLog + text).slice(-20_000);
    }));
  }, { timeout: 60_000 });

  after(() => closeSession(browser, driver, tmp));

  /** Clicks a sidebar entry and waits for its screen. */
  async function go(screen) {
    await browser.$(`[data-testid="nav-${screen}"]`).click();
    await browser.waitUntil(
      async () => (await browser.$(`[data-testid="nav-${screen}"]`).getAttribute("aria-current")) === "page",
      { timeout: UI_TIMEOUT_MS, timeoutMsg: `screen ${screen} not shown` },
    );
  }

  /** Waits until every upload is paused (or resumed): the queue's button says so. "Paused" in
   * the status line may also mean watching is paused, which is not this. */
  async function uploadsPaused(paused) {
    const want = paused ? "Resume all" : "Pause all";
    await eventually(async () => (await browser.$('[data-testid="pause-all"]').getText()).includes(want), `the queue's button does not say ${want}`);
  }

  /** Closes every toast, as a user would before reaching what one covers (they sit over the
   * bottom right: the queue's last row, the last card's buttons). */
  async function closeToasts() {
    await browser.execute(() => {
      for (const close of document.querySelectorAll('[data-testid="toast"] button')) close.click();
    });
  }

  const assertAccessible = (state) => checkAccessible(browser, state);

  /** Chooses Appearance in Settings (it stays on Settings) and waits for the page to follow. */
  async function setTheme(choice) {
    await go("settings");
    await closeToasts();
    const select = browser.$('[data-testid="pref-theme"]');
    await select.scrollIntoView({ block: "center" });
    await select.selectByAttribute("value", choice);
    const want = choice === "system" ? ["light", "dark"] : [choice];
    await eventually(async () => want.includes(await browser.execute(() => document.documentElement.dataset.theme)), `the page is not ${choice}`);
  }

  /** Presses Tab (Shift+Tab with `back`) until `selector` has the focus, as a keyboard user
   * moves through the window; every element on the way must show that it has the focus. */
  async function tabTo(selector, { back = false, max = 80 } = {}) {
    for (let i = 0; i < max; i += 1) {
      await browser.keys(back ? ["Shift", "Tab"] : ["Tab"]);
      const stop = await browser.execute((sel) => {
        const el = document.activeElement;
        if (!el || el === document.body) return null;
        const style = getComputedStyle(el);
        return {
          match: el.matches(sel),
          shown: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2,
          what: el.outerHTML.slice(0, 160),
        };
      }, selector);
      if (!stop) continue;
      assert.ok(stop.shown, `the focus is not visible on ${stop.what}`);
      if (stop.match) return;
    }
    assert.fail(`${selector} was not reached with ${max} presses of Tab`);
  }

  /** The focused element's outer HTML (its start), or "body". */
  async function focused() {
    return browser.execute(() => {
      const el = document.activeElement;
      return !el || el === document.body ? "body" : el.outerHTML.slice(0, 200);
    });
  }

  async function shot(name) {
    if (!SHOTS) return;
    await mkdir(SHOTS, { recursive: true });
    // No toasts over the screen, the queue scrolled to its newest files.
    await browser.execute(() => {
      for (const close of document.querySelectorAll('[data-testid="toast"] button')) close.click();
      const list = document.querySelector('[data-testid="queue-list"]');
      if (list) list.scrollTop = list.scrollHeight;
    });
    // The DOM can be ahead of the last paint (seen on a cold start): let two frames pass.
    await browser.executeAsync((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
    await browser.saveScreenshot(join(resolve(SHOTS), `${name}.png`));
  }

  /** Puts `text` on the real X clipboard, as a file manager's "Copy" does (xclip keeps
   * serving it in the background until something else takes the clipboard). */
  function setClipboard(text) {
    execFileSync("xclip", ["-selection", "clipboard", "-i"], { input: text, stdio: ["pipe", "ignore", "ignore"] });
  }

  /** Copies `paths` to the clipboard, then pastes (Ctrl+V's event) into the window: Rust reads
   * the clipboard itself (see the header). */
  async function pastePaths(paths) {
    setClipboard(paths.join("\n"));
    await browser.execute(() => {
      document.body.dispatchEvent(new ClipboardEvent("paste", { clipboardData: new DataTransfer(), bubbles: true, cancelable: true }));
    });
  }

  async function historyItems() {
    const items = [];
    for (const item of await browser.$$('[data-testid="history-item"]')) {
      items.push({ name: await item.getAttribute("data-name"), url: await item.getAttribute("data-url") });
    }
    return items;
  }

  async function pageHasNoSecret() {
    const source = await browser.getPageSource();
    for (const secret of [SECRET, TYPED_SECRET, ADDED_SECRET]) {
      assert.ok(!source.includes(secret), "the page source contains a secret");
    }
  }

  /** Uploads by the window's state, read from the rows (the list is virtualised: few rows). */
  async function queueStates() {
    const states = {};
    for (const row of await browser.$$('[data-testid="queue-item"]')) {
      states[await row.getAttribute("data-name")] = await row.getAttribute("data-state");
    }
    return states;
  }

  it("lists the configured profiles with where their keys come from", async () => {
    await browser.waitUntil(async () => browser.$('[data-testid="nav-settings"]').isExisting(), {
      timeout: UI_TIMEOUT_MS,
      timeoutMsg: `the window did not render\n${driverLog}`,
    });
    await go("settings");
    // Either the list or an error shows up; an error fails with its message.
    await browser.waitUntil(
      async () =>
        (await browser.$('[data-testid="profile-item"]').isExisting()) ||
        (await browser.$('[data-testid="error"]').isExisting()),
      { timeout: UI_TIMEOUT_MS, timeoutMsg: `no profiles or error shown\n${driverLog}` },
    );
    const error = browser.$('[data-testid="error"]');
    if (await error.isExisting()) assert.fail(`the app shows an error: ${await error.getText()}`);

    const profiles = [];
    for (const item of await browser.$$('[data-testid="profile-item"]')) {
      const badge = item.$('[data-testid="secret-status"]');
      profiles.push({
        name: await item.getAttribute("data-profile"),
        isDefault: (await item.getAttribute("data-default")) === "true",
        source: await badge.getAttribute("data-source"),
        badge: await badge.getText(),
      });
    }
    const names = profiles.map((p) => p.name);
    const byProfile = Object.fromEntries(profiles.map((p) => [p.name, p]));

    // Exactly the config's profiles, plus the built-in sandbox.
    assert.equal(new Set(names).size, names.length, `duplicate profiles: ${names}`);
    assert.deepEqual(names.filter((n) => n !== "sandbox").sort(), ["cl", "far", "ik"]);
    assert.ok(byProfile.sandbox?.isDefault, "sandbox is missing or not the default");
    assert.deepEqual(names, uiOrder(profiles), "profiles are not in the UI's order");

    assert.equal(byProfile.cl.source, "env");
    assert.equal(byProfile.cl.badge, "Key set (env)");
    assert.equal(byProfile.ik.source, "missing");
    assert.equal(byProfile.ik.badge, "Key not set");

    // "Test connection" on the built-in profile reaches the sandbox with its key and says so
    // (the core's connection test, as `dropkey profile test sandbox` runs it).
    const sandboxCard = browser.$('[data-testid="profile-item"][data-profile="sandbox"]');
    await sandboxCard.$('[data-testid="test-connection"]').click();
    const message = sandboxCard.$('[data-testid="profile-message"]');
    await browser.waitUntil(async () => (await message.isExisting()) && (await message.getText()) !== "Testing…", {
      timeout: UI_TIMEOUT_MS,
      timeoutMsg: "the connection test did not answer",
    });
    assert.match(await message.getText(), /^Connected: ImageKit accepted the key$/);
    assert.ok(!(await message.getAttribute("class")).includes("bad"), await message.getText());
  });

  it("uploads pasted files to the sandbox and lists them in History with working links", async () => {
    const files = {
      "sunrise.png": makePng(96, [255, 153, 102], [120, 60, 200]),
      "lagoon.png": makePng(96, [40, 200, 190], [20, 60, 160]),
      "notes.txt": Buffer.from(`release notes ${randomBytes(8).toString("hex")}\n`),
    };
    const paths = [];
    for (const [name, bytes] of Object.entries(files)) {
      const path = join(tmp, "in", name);
      await writeFile(path, bytes);
      paths.push(path);
    }
    await go("upload");
    await browser.$('[data-testid="dest-profile"]').waitForExist({ timeout: UI_TIMEOUT_MS });
    assert.equal(await browser.$('[data-testid="dest-profile"]').getValue(), "sandbox");
    // The profile's documented defaults are prefilled.
    assert.equal(await browser.$('[data-testid="dest-folder"]').getValue(), "/uploads/chat");
    assert.equal(await browser.$('[data-testid="dest-tags"]').getValue(), "chat, media");

    await pastePaths(paths);
    await eventually(async () => {
      const states = await queueStates();
      return Object.keys(files).every((name) => states[name] === "done") && states;
    }, `the pasted files did not upload\n${driverLog}`);

    await go("history");
    const listed = await eventually(async () => {
      const items = await historyItems();
      return Object.keys(files).every((name) => items.some((i) => i.name === name)) && items;
    }, "the uploads are not in History");
    for (const [name, bytes] of Object.entries(files)) {
      const { url } = listed.find((i) => i.name === name);
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\//, `${name}: not a sandbox URL: ${url}`);
      const response = await fetch(url);
      assert.equal(response.status, 200, `${name}: ${url} answered ${response.status}`);
      assert.ok(Buffer.from(await response.arrayBuffer()).equals(bytes), `${name}: the bytes at ${url} differ`);
    }
    // "Open" hands the URL to the browser (the fake one notes it, one whole line per URL).
    const { url: notesUrl } = listed.find((i) => i.name === "notes.txt");
    const opened = () => readFile(join(tmp, "opened.txt"), "utf8").catch(() => "");
    await browser.$('[data-testid="history-item"][data-name="notes.txt"] [data-testid="open-url"]').click();
    await eventually(
      async () => (await opened()).split("\n").slice(0, -1).includes(notesUrl),
      `the browser was not opened on ${notesUrl}`,
    );
    // The opener's scope is http(s) only: a file URL asked for by the page is refused.
    const refused = await browser.executeAsync((done) => {
      window.__TAURI_INTERNALS__
        .invoke("plugin:opener|open_url", { url: "file:///etc/passwd" })
        .then(() => done("opened"), (err) => done(`refused: ${err}`));
    });
    assert.match(refused, /^refused: /, refused);
    assert.ok(!(await opened()).includes("file:"), "a file URL reached the browser");

    // The previews load from the sandbox under the CSP.
    await eventually(
      async () =>
        browser.execute(() =>
          [...document.querySelectorAll('[data-testid="history-item"] img')].some(
            (img) => img.complete && img.naturalWidth > 0,
          ),
        ),
      "no thumbnail loaded",
    );
    await pageHasNoSecret();
  });

  it("refuses paths the page names itself, on the queue, the watches and the clipboard", async () => {
    const secret = join(tmp, "in", "id_ed25519");
    await writeFile(secret, "-----BEGIN OPENSSH PRIVATE KEY-----\nnot really\n");
    const invoke = (cmd, args) =>
      browser.executeAsync((cmd, args, done) => {
        window.__TAURI_INTERNALS__.invoke(cmd, args).then(
          (value) => done({ ok: true, value }),
          (err) => done({ ok: false, err }),
        );
      }, cmd, args);
    const destination = { profile: "sandbox", folder: null, tags: null };
    const queued = await invoke("enqueue_files", { request: { paths: [secret], destination, keep_structure: false } });
    assert.equal(queued.ok, false, JSON.stringify(queued));
    assert.equal(queued.err.kind, "not_chosen", JSON.stringify(queued));
    const watched = await invoke("add_watch", {
      watch: { path: join(tmp, "in"), profile: "sandbox", folder: null, tags: null, recursive: true },
    });
    assert.equal(watched.ok, false, JSON.stringify(watched));
    assert.equal(watched.err.kind, "not_chosen");
    const copied = await invoke("copy_text", { text: secret });
    assert.equal(copied.ok, false, JSON.stringify(copied));
    // The plugins the page used to reach directly are not granted any more.
    const dialog = await invoke("plugin:dialog|open", { options: {} });
    assert.equal(dialog.ok, false);
    const clipboard = await invoke("plugin:clipboard-manager|write_text", { text: secret });
    assert.equal(clipboard.ok, false);
    assert.ok(!(await queueStates())["id_ed25519"], "the key file was queued");
  });

  it("saves a new address for a profile's key only after a native confirmation", async () => {
    const configPath = join(tmp, "config.toml");
    const before = await readFile(configPath, "utf8");
    const profile = {
      name: "ik", provider: "imagekit", auth: "v2", public_key: "public_e2e",
      url_endpoint: "https://ik.imagekit.io/e2e", upload_url: null,
      api_url: "https://media.example.com", token_url: null,
      folder: "/uploads/chat", tags: ["chat", "media"], cloud_name: null, api_key: null, private: false,
      metadata: "strip-location", on_duplicate: "skip", max_dimension: null, quality: null,
    };
    const save = () =>
      browser.executeAsync((profile, done) => {
        window.__TAURI_INTERNALS__.invoke("save_profile", { profile }).then(
          () => done({ ok: true }),
          (err) => done({ ok: false, err }),
        );
      }, profile);
    /** The native dialog's X window, answered with `key` (Escape cancels, Return confirms). */
    const answer = async (key) => {
      const id = await eventually(() => {
        try {
          return execFileSync("xdotool", ["search", "--name", "Send the key to a new address"], { encoding: "utf8" }).trim().split("\n")[0];
        } catch {
          return "";
        }
      }, "no native confirmation dialog");
      if (SHOTS) {
        await mkdir(SHOTS, { recursive: true });
        execFileSync("import", ["-window", "root", join(resolve(SHOTS), "confirm-address.png")]);
      }
      execFileSync("xdotool", ["windowfocus", "--sync", id, "key", "--clearmodifiers", key]);
    };
    // Cancelled: nothing changes.
    let [result] = await Promise.all([save(), answer("Escape")]);
    assert.equal(result.ok, false, JSON.stringify(result));
    assert.match(result.err.message, /not saved: the new address https:\/\/media\.example\.com was not confirmed/);
    assert.equal(await readFile(configPath, "utf8"), before, "config.toml changed without confirmation");
    // Confirmed: saved.
    [result] = await Promise.all([save(), answer("Return")]);
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.match(await readFile(configPath, "utf8"), /api_url = "https:\/\/media\.example\.com"/);
    // The same address again needs no new question; back to the provider's own address.
    profile.api_url = null;
    result = await save();
    assert.equal(result.ok, true, JSON.stringify(result));
  });

  it("sets a key in Settings: the keychain holds it and the page shows only that it is set", async () => {
    await go("settings");
    const card = browser.$('[data-testid="profile-item"][data-profile="ik"]');
    const input = card.$('[data-testid="key-input"]');
    await input.setValue(TYPED_SECRET);
    await card.$('[data-testid="key-save"]').click();
    await eventually(
      async () => (await card.$('[data-testid="secret-status"]').getAttribute("data-source")) === "keychain",
      "the badge does not say keychain",
    );
    assert.equal(await card.$('[data-testid="secret-status"]').getText(), "Key set (keychain)");
    assert.equal(await input.getValue(), "", "the key input was not cleared");

    const status = JSON.parse(
      execFileSync(CLI, ["key", "status", "ik"], { env: appEnv(tmp), encoding: "utf8" }).trim(),
    );
    assert.deepEqual(status, { profile: "ik", source: "keychain" });
    try {
      const stored = execFileSync("secret-tool", ["lookup", "service", "dropkey", "username", "ik"], {
        encoding: "utf8",
      });
      assert.equal(stored, TYPED_SECRET, "the keychain holds another value");
    } catch (err) {
      if (err.code !== "ENOENT") throw err; // libsecret-tools not installed: `key status` above
    }
    await pageHasNoSecret();
    await browser.execute(() => document.querySelector("main")?.scrollTo(0, 0));
    await shot("settings");
  });

  it("adds, edits and removes a profile in Settings; config.toml and the keychain follow", async () => {
    await go("settings");
    const configPath = join(tmp, "config.toml");
    const keyStatus = (name) =>
      JSON.parse(execFileSync(CLI, ["key", "status", name], { env: appEnv(tmp), encoding: "utf8" }).trim())
        .source;

    await browser.$('[data-testid="profile-add"]').click();
    const editor = browser.$('[data-testid="profile-editor"]');
    await editor.waitForDisplayed();
    // Saving an incomplete form names what is missing and sends nothing.
    await editor.$('[data-testid="profile-save"]').click();
    await eventually(async () => (await editor.$$(".error")).length >= 3, "no field errors shown");
    await editor.$('[data-testid="profile-name"]').setValue("added");
    await editor.$('[data-testid="profile-public-key"]').setValue("public_added");
    await editor.$('[data-testid="profile-url-endpoint"]').setValue("https://ik.imagekit.io/added");
    await editor.$('[data-testid="profile-tags"]').setValue("web, hero");
    await editor.$('[data-testid="profile-key"]').setValue(ADDED_SECRET);
    await shot("profile-editor");
    await editor.$('[data-testid="profile-save"]').click();
    const card = browser.$('[data-testid="profile-item"][data-profile="added"]');
    await eventually(async () => card.isExisting(), "the new profile is not listed");
    await eventually(
      async () => (await card.$('[data-testid="secret-status"]').getAttribute("data-source")) === "keychain",
      "the new profile's key is not in the keychain",
    );
    let text = await readFile(configPath, "utf8");
    assert.match(text, /\[profiles\.added\]\nprovider = "imagekit"\nauth = "v2"\npublic_key = "public_added"/);
    assert.match(text, /tags = \["web", "hero"\]/);
    assert.ok(text.includes("[[watch]]"), "the existing watch was lost");
    assert.ok(!text.includes(ADDED_SECRET), "the key reached config.toml");
    assert.equal(keyStatus("added"), "keychain");
    await pageHasNoSecret();

    await card.$('[data-testid="profile-edit"]').click();
    const edit = browser.$('[data-testid="profile-item-editing"][data-profile="added"]');
    await edit.waitForDisplayed();
    assert.equal(await edit.$('[data-testid="profile-public-key"]').getValue(), "public_added");
    await edit.$('[data-testid="profile-folder"]').setValue("/edited");
    await edit.$('[data-testid="profile-save"]').click();
    await eventually(async () => (await readFile(configPath, "utf8")).includes('folder = "/edited"'), "the edit did not reach config.toml");
    await eventually(async () => card.isExisting(), "the edited profile is not listed");

    await card.$('[data-testid="profile-remove"]').click();
    await browser.$('[data-testid="confirm-ok"]').click();
    await eventually(async () => !(await card.isExisting()), "the removed profile is still listed");
    text = await readFile(configPath, "utf8");
    assert.ok(!text.includes("profiles.added"), "the profile is still in config.toml");
    // The profile is gone, so ask the keychain itself whether its key went with it.
    let stillThere = true;
    try {
      execFileSync("secret-tool", ["lookup", "service", "dropkey", "username", "added"], { encoding: "utf8" });
    } catch (err) {
      if (err.code === "ENOENT") return; // libsecret-tools not installed
      assert.equal(err.status, 1, `secret-tool failed: ${err.message}`);
      stillThere = false;
    }
    assert.ok(!stillThere, "the removed profile's key is still in the keychain");
  });

  it("uploads a file written into a watched folder", async () => {
    await go("watches");
    await eventually(
      async () => (await browser.$('[data-testid="watch-item"]').getAttribute("data-state")) === "watching",
      "the watched folder is not being watched",
    );
    const bytes = makePng(64, [250, 210, 80], [230, 90, 60]);
    await writeFile(join(tmp, "watched", "dropped-in.png"), bytes);
    await go("history");
    const item = await eventually(
      async () => (await historyItems()).find((i) => i.name === "dropped-in.png"),
      "the watched file is not in History",
      45_000,
    );
    const response = await fetch(item.url);
    assert.ok(Buffer.from(await response.arrayBuffer()).equals(bytes), "the watched file's bytes differ");
  });

  it("runs the tray's actions: pause/resume watching, upload the clipboard, copy the last URL", async () => {
    // Pause watching (the tray's item and this button call the same function).
    await go("watches");
    await browser.$('[data-testid="watching-toggle"]').click();
    await eventually(
      async () => (await browser.$('[data-testid="watch-item"]').getAttribute("data-state")) === "paused",
      "watching did not pause",
    );
    await eventually(
      async () => (await browser.$('[data-testid="app-status"]').getAttribute("data-activity")) === "paused",
      "the status does not say paused",
    );
    await writeFile(join(tmp, "watched", "while-paused.png"), makePng(32, [10, 10, 10], [90, 90, 90]));
    await new Promise((r) => setTimeout(r, 3_000));
    await go("history");
    assert.ok(!(await historyItems()).some((i) => i.name === "while-paused.png"), "uploaded while paused");
    await go("watches");
    await browser.$('[data-testid="watching-toggle"]').click();
    await go("history");
    await eventually(
      async () => (await historyItems()).some((i) => i.name === "while-paused.png"),
      "the file written while paused was not uploaded after resuming",
      45_000,
    );

    // Upload the clipboard: put a path on the real clipboard, then the tray's command.
    const clip = join(tmp, "in", "from-clipboard.png");
    await writeFile(clip, makePng(48, [90, 200, 120], [20, 120, 90]));
    setClipboard(clip);
    await go("upload");
    await browser.$('[data-testid="paste-clipboard"]').click();
    await eventually(
      async () => (await queueStates())["from-clipboard.png"] === "done",
      "the clipboard file did not upload",
    ).catch(async (err) => {
      if (SHOTS) await browser.saveScreenshot(join(resolve(SHOTS), "failure.png"));
      throw new Error(`${err.message}; the window says: ${await browser.$('[data-testid="toasts"]').getText()}\n${driverLog.slice(-3000)}`);
    });

    // Copy the last URL, then paste it into a text field to read the clipboard back.
    await browser.$('[data-testid="copy-last-url"]').click();
    await go("history");
    const newest = (await historyItems())[0];
    assert.equal(newest.name, "from-clipboard.png");
    const field = browser.$('[data-testid="history-search"]');
    await field.clearValue();
    await field.click();
    await eventually(async () => {
      await field.clearValue();
      await browser.keys(["Control", "v"]);
      return (await field.getValue()) === newest.url;
    }, "the clipboard does not hold the last URL");
    await browser.keys(["Control", "a"]);
    await browser.keys(["Backspace"]);
    await browser.execute(() => document.activeElement?.blur());
    await eventually(async () => (await historyItems()).length >= 6, "History does not list every upload again");
    await shot("history");
    await pageHasNoSecret();
  });

  it("pauses and resumes every upload from the queue", async () => {
    await go("upload");
    await uploadsPaused(false); // the button acts on what it says: let it say Pause all first
    await browser.$('[data-testid="pause-all"]').click();
    await uploadsPaused(true);
    const names = ["team-offsite.jpg", "product-hero.png", "invoice-2026-11.pdf", "launch-video.mp4"];
    const paths = [];
    for (const [i, name] of names.entries()) {
      const path = join(tmp, "in", name);
      await writeFile(path, randomBytes(200_000 + i * 150_000));
      paths.push(path);
    }
    await pastePaths(paths);
    let seen = {};
    await eventually(async () => {
      // The newest rows are at the end of the (virtual) list: scrolled to, as a user would.
      await browser.execute(() => {
        const list = document.querySelector('[data-testid="queue-list"]');
        if (list) list.scrollTop = list.scrollHeight;
      });
      seen = await queueStates();
      return names.every((n) => seen[n] === "queued");
    }, "the files queued while paused are not shown as queued").catch((err) => {
      throw new Error(`${err.message}: ${JSON.stringify(seen)}`);
    });
    await shot("upload");
    await browser.$('[data-testid="pause-all"]').click();
    await eventually(async () => {
      const states = await queueStates();
      return names.every((n) => states[n] === "done");
    }, "the files did not upload after resuming");
  });

  it("queues a folder of thousands in the background, pages the queue, retries and clears any number", async () => {
    await go("upload");
    // Clear what earlier tests left, so the counts below are this folder's.
    await closeToasts();
    if (await browser.$('[data-testid="clear-finished"]').isEnabled()) await browser.$('[data-testid="clear-finished"]').click();
    await eventually(async () => browser.$('[data-testid="queue-empty"]').isExisting(), "the queue did not clear");
    await uploadsPaused(false); // the button acts on what it says: let it say Pause all first
    await browser.$('[data-testid="pause-all"]').click();
    await uploadsPaused(true);
    const FILES = 3000;
    const folder = join(tmp, "archive");
    await mkdir(folder);
    const name = (i) => `scan-${String(i).padStart(5, "0")}.txt`;
    for (let i = 0; i < FILES; i += 1) await writeFile(join(folder, name(i)), `page ${i}\n`);
    await pastePaths([folder]);
    const summary = browser.$('[data-testid="queue-summary"]');
    // Counts are shown in the user's locale (3,000 or 3000 or 3 000).
    const num = (n) => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, "[,.\u00a0\u202f ]?");
    let shown = "";
    const shows = async (pattern) => {
      shown = (await summary.isExisting()) ? await summary.getText() : "(no summary)";
      return new RegExp(pattern).test(shown);
    };
    await eventually(() => shows(`^0 of ${num(FILES)} uploaded`), "the folder's files were not all queued").catch((err) => {
      throw new Error(`${err.message}; the queue says: ${shown}`);
    });
    // The window renders a few rows, not thousands.
    const rendered = (await browser.$$('[data-testid="queue-item"]')).length;
    assert.ok(rendered > 0 && rendered < 100, `${rendered} rows rendered for ${FILES} jobs`);
    // Its last files are read from the core when scrolled to.
    await browser.execute(() => {
      const list = document.querySelector('[data-testid="queue-list"]');
      if (list) list.scrollTop = list.scrollHeight;
    });
    await eventually(async () => (await queueStates())[name(FILES - 1)] === "queued", "the last file is not shown at the end of the queue");
    // Forty files go away before their turn (moved, as a user tidying up would): they fail.
    const away = join(tmp, "archive-away");
    await mkdir(away);
    for (let i = 0; i < 40; i += 1) await rename(join(folder, name(i * 70)), join(away, name(i * 70)));
    await browser.$('[data-testid="pause-all"]').click();
    await eventually(() => shows(`^${num(FILES - 40)} of ${num(FILES)} uploaded · 40 failed`), "the moved files did not fail and the rest upload", 120_000);
    await shot("queue-thousands");
    // Moved back (same file: same inode and mtime), all forty are retried with one click.
    for (let i = 0; i < 40; i += 1) await rename(join(away, name(i * 70)), join(folder, name(i * 70)));
    await browser.$('[data-testid="retry-failed"]').click();
    await eventually(() => shows(`^${num(FILES)} of ${num(FILES)} uploaded`), "the retried files did not upload");
    await browser.$('[data-testid="clear-finished"]').click();
    await eventually(async () => browser.$('[data-testid="queue-empty"]').isExisting(), "Clear finished left uploads in the queue");
  });

  it("shows offline in a banner while the provider cannot be reached, and clears it", async () => {
    await go("upload");
    await browser.$('[data-testid="dest-profile"]').selectByAttribute("value", "far");
    const path = join(tmp, "in", "offline-report.pdf");
    await writeFile(path, randomBytes(20_000));
    await pastePaths([path]);
    const banner = browser.$('[data-testid="offline-banner"]');
    await eventually(async () => banner.isExisting(), "no offline banner");
    const text = await banner.getText();
    assert.match(text, /^offline — \d+ waiting, next try in \d+ s \(cannot reach http:\/\/127\.0\.0\.1:\d+\)$/, text);
    await shot("offline");
    await assertAccessible("Upload, offline");
    await setTheme("dark");
    await assertAccessible("Settings, offline, dark");
    await setTheme("light");
    await go("upload");
    // The file waits: no give-up while offline. The queue is a virtual list: its newest rows
    // (this file) are rendered once it is scrolled to the end, as a user would.
    await browser.execute(() => {
      const list = document.querySelector('[data-testid="queue-list"]');
      if (list) list.scrollTop = list.scrollHeight;
    });
    await eventually(
      async () => (await queueStates())["offline-report.pdf"] === "running",
      "the file waiting for the network is not shown as running",
    );
    // Nobody waits once it is cancelled: the banner goes. (The "queued" toast is closed first:
    // it sits over the queue's last rows.)
    await closeToasts();
    await browser.$('[data-testid="queue-item"][data-name="offline-report.pdf"] button[aria-label^="Cancel"]').click();
    await eventually(async () => !(await banner.isExisting()), "the banner stayed after the only waiting file was cancelled");
    await browser.$('[data-testid="dest-profile"]').selectByAttribute("value", "sandbox");
  });

  /** Answers the native "Choose a folder" dialog with `folder`, typed into its location bar. */
  async function chooseFolder(folder) {
    /** The chooser's visible X windows (GTK may map more than one under that name). */
    const chooser = () => {
      try {
        return execFileSync("xdotool", ["search", "--onlyvisible", "--name", "^Choose a folder$"], { encoding: "utf8" }).trim().split("\n").filter(Boolean);
      } catch {
        return [];
      }
    };
    /** Gives the keyboard to whichever of its windows takes it, then presses `keys`. */
    const press = (...keys) => {
      for (const id of chooser()) {
        try {
          execFileSync("xdotool", ["windowfocus", "--sync", id, "key", "--clearmodifiers", ...keys], { stdio: "ignore" });
          return true;
        } catch {
          // not this one (unmapped meanwhile, or not focusable): the next
        }
      }
      return false;
    };
    /** The folder typed into the location bar (Ctrl+L), replacing what is there, and entered. */
    const typeFolder = () => {
      if (!press("ctrl+l", "ctrl+a")) return;
      execFileSync("xdotool", ["type", "--delay", "5", `${folder}/`]);
      execFileSync("xdotool", ["key", "--clearmodifiers", "Return"]);
    };
    await eventually(() => chooser().length > 0, "no native folder chooser");
    // Out of "Recent" (where a typed folder is only completed, never entered) to the home
    // folder (Alt+Home), then the folder typed.
    press("alt+Home");
    typeFolder();
    // GTK may take the first Return to enter the folder: the next one chooses it. Should the
    // typing have gone astray (a completion popping up under it), the folder is typed again.
    let tries = 0;
    await eventually(() => {
      if (chooser().length === 0) return true;
      tries += 1;
      if (tries % 5 === 0) typeFolder();
      else press("Return");
      return false;
    }, "the folder chooser did not close");
  }

  /** Adds a watched folder through the screen's form and the native chooser. */
  async function addWatch(folder, { profile = "sandbox", tags = "" } = {}) {
    await browser.$('[data-testid="watch-new"]').click();
    await browser.$('[data-testid="watch-profile"]').selectByAttribute("value", profile);
    if (tags) await browser.$('[data-testid="watch-tags"]').setValue(tags);
    await Promise.all([browser.$('[data-testid="watch-add"]').click(), chooseFolder(folder)]);
    await eventually(async () => browser.$(`[data-testid="watch-item"][data-path="${folder}"]`).isExisting(), `${folder} is not listed`);
  }

  it("follows each watched folder on its own screen: add, counts and links, pause, edit, open, missing, offline", async () => {
    await go("watches");
    const item = (folder) => browser.$(`[data-testid="watch-item"][data-path="${folder}"]`);
    const stateOf = async (folder) => item(folder).getAttribute("data-state");
    const count = async (folder, what) => Number((await item(folder).$(`[data-testid="watch-${what}"]`).getText()).replace(/\D/g, ""));
    const configPath = join(tmp, "config.toml");

    // Added through the form and the native chooser: a [[watch]] in config.toml, watching.
    const photos = join(tmp, "Photos");
    await mkdir(photos);
    await addWatch(photos, { tags: "camera, phone" });
    await eventually(async () => (await stateOf(photos)) === "watching", "the new folder is not watched");
    assert.match(await readFile(configPath, "utf8"), new RegExp(`path = "${photos}"\nprofile = "sandbox"\ntags = \\["camera", "phone"\\]`));

    // A file dropped in is counted as uploaded today and listed with its link.
    const bytes = makePng(96, [60, 140, 230], [250, 250, 255]);
    await writeFile(join(photos, "beach.png"), bytes);
    await eventually(async () => (await count(photos, "today")) === 1, "the upload is not counted as uploaded today", 45_000);
    const recent = item(photos).$('[data-testid="watch-recent"]');
    assert.equal(await recent.getAttribute("data-name"), "beach.png");
    const url = await recent.getAttribute("data-url");
    assert.ok(Buffer.from(await (await fetch(url)).arrayBuffer()).equals(bytes), "the listed link does not serve the file");
    assert.equal(await count(photos, "waiting"), 0);
    assert.equal(await count(photos, "failed"), 0);
    // Its link is copied (read back from the real X clipboard).
    await recent.$('[data-testid="watch-recent-copy"]').click();
    await eventually(
      () => execFileSync("xclip", ["-selection", "clipboard", "-o"], { encoding: "utf8" }) === url,
      "the clipboard does not hold the file's link",
    );

    // Paused on its own: the other watches go on.
    await item(photos).$('[data-testid="watch-toggle"]').click();
    await eventually(async () => (await stateOf(photos)) === "paused", "the folder did not pause");
    assert.equal(await stateOf(join(tmp, "watched")), "watching", "pausing one folder paused another");

    // Edited with the config's rules: tags and subfolders change, it stays paused.
    await item(photos).$('[data-testid="watch-edit"]').click();
    await item(photos).$('[data-testid="watch-edit-tags"]').setValue("camera");
    await item(photos).$('[data-testid="watch-edit-recursive"]').click();
    await item(photos).$('[data-testid="watch-edit-save"]').click();
    await eventually(
      async () => new RegExp(`path = "${photos}"\nprofile = "sandbox"\ntags = \\["camera"\\]\nrecursive = false`).test(await readFile(configPath, "utf8")),
      "the edit did not reach config.toml",
    );
    await eventually(async () => (await stateOf(photos)) === "paused", "the edited folder did not stay paused");

    // "Open folder" hands the folder (never a path the page chose) to the file manager.
    await item(photos).$('[data-testid="watch-open"]').click();
    await eventually(
      async () => (await readFile(join(tmp, "opened.txt"), "utf8").catch(() => "")).includes(photos),
      "the folder was not opened in the file manager",
    );

    // A folder that goes away is missing, and says so.
    const screenshots = join(tmp, "Screenshots");
    await mkdir(screenshots);
    await addWatch(screenshots);
    await eventually(async () => (await stateOf(screenshots)) === "watching", "the second folder is not watched");
    await rm(screenshots, { recursive: true });
    await eventually(async () => (await stateOf(screenshots)) === "missing", "the deleted folder is not missing");
    assert.match(await item(screenshots).$('[data-testid="watch-detail"]').getText(), /Screenshots/);
    // The sidebar's "needs attention" badge and the missing folder's card.
    await browser.$('[data-testid="nav-watches"] .count.alert').waitForExist({ timeout: UI_TIMEOUT_MS });
    await assertAccessible("Watched folders, one missing");

    // A folder whose provider cannot be reached is offline, its file waiting.
    const scans = join(tmp, "Scans");
    await mkdir(scans);
    await addWatch(scans, { profile: "far" });
    await writeFile(join(scans, "invoice.pdf"), randomBytes(5_000));
    await eventually(async () => (await stateOf(scans)) === "offline", "the folder of an unreachable provider is not offline");
    await eventually(async () => (await count(scans, "waiting")) === 1, "the file waiting for the network is not counted");
    assert.match(await item(scans).$('[data-testid="watch-detail"]').getText(), /cannot reach http:\/\/127\.0\.0\.1:\d+/);
    await shot("watches");

    // Removed after a confirmation: gone from the screen and the file.
    // (The toasts are closed first: they sit over the last card's buttons.)
    await closeToasts();
    await item(screenshots).$('[data-testid="watch-remove"]').click();
    await browser.$('[data-testid="confirm-ok"]').click();
    await eventually(async () => !(await item(screenshots).isExisting()), "the removed folder is still listed");
    assert.ok(!(await readFile(configPath, "utf8")).includes(screenshots), "the removed folder is still in config.toml");
    await pageHasNoSecret();
  });

  /** Another X client holding a key grab (as a desktop's own shortcut would), until stopped. */
  async function grabKey(keysym, mask) {
    const script = `
import ctypes, sys
x = ctypes.cdll.LoadLibrary("libX11.so.6")
x.XOpenDisplay.restype = ctypes.c_void_p
x.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
x.XDefaultRootWindow.restype = ctypes.c_ulong
x.XStringToKeysym.restype = ctypes.c_ulong
x.XKeysymToKeycode.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
x.XKeysymToKeycode.restype = ctypes.c_ubyte
x.XGrabKey.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint, ctypes.c_ulong, ctypes.c_int, ctypes.c_int, ctypes.c_int]
x.XSync.argtypes = [ctypes.c_void_p, ctypes.c_int]
d = x.XOpenDisplay(None)
code = x.XKeysymToKeycode(d, x.XStringToKeysym(sys.argv[1].encode()))
x.XGrabKey(d, code, int(sys.argv[2]), x.XDefaultRootWindow(d), 1, 1, 1)
x.XSync(d, 0)
print("grabbed", flush=True)
sys.stdin.read()
`;
    const child = spawn("python3", ["-c", script, keysym, String(mask)], { stdio: ["pipe", "pipe", "inherit"] });
    await new Promise((resolve, reject) => {
      child.stdout.on("data", (chunk) => String(chunk).includes("grabbed") && resolve());
      child.on("exit", (code) => reject(new Error(`the key grabber exited (${code})`)));
    });
    return () => {
      child.stdin.end();
      child.kill();
    };
  }

  it("sets global shortcuts in Settings, reports conflicts, and a registered one fires from anywhere", async () => {
    await go("settings");
    const row = (action) => browser.$(`[data-testid="shortcut"][data-action="${action}"]`);
    const statusOf = async (action) => row(action).getAttribute("data-status");
    const problemOf = async (action) => {
      const problem = row(action).$('[data-testid="shortcut-problem"]');
      return (await problem.isExisting()) ? problem.getText() : "";
    };
    const type = async (action, accelerator) => {
      // The last save's toast may sit over the buttons.
      await closeToasts();
      const input = row(action).$('[data-testid="shortcut-input"]');
      await input.clearValue();
      await input.setValue(accelerator);
      await row(action).$('[data-testid="shortcut-save"]').click();
    };
    assert.equal(await statusOf("pause_watching"), "off");

    // Set: registered with the X server, and it fires without the window: watching pauses.
    await type("pause_watching", "Ctrl+Alt+P");
    await eventually(async () => (await statusOf("pause_watching")) === "active", "the shortcut is not active");
    const watched = join(tmp, "watched");
    const watchState = () =>
      browser.execute(async (path) => (await window.__TAURI_INTERNALS__.invoke("list_watches")).find((w) => w.path === path)?.state, watched);
    assert.equal(await watchState(), "watching");
    execFileSync("xdotool", ["key", "--clearmodifiers", "ctrl+alt+p"]);
    await eventually(async () => (await watchState()) === "paused", "the shortcut did not pause watching");
    execFileSync("xdotool", ["key", "--clearmodifiers", "ctrl+alt+p"]);
    await eventually(async () => (await watchState()) === "watching", "the shortcut did not resume watching");

    // Two actions on one key (written differently): refused, and said so.
    await type("copy_last_url", "alt+control+p");
    await eventually(async () => /already the shortcut for “Pause or resume watching”/.test(await problemOf("copy_last_url")), "no conflict shown");
    assert.equal(await statusOf("copy_last_url"), "off");

    // A key another application holds: refused, and said so.
    const release = await grabKey("g", 4 | 8); // ControlMask | Mod1Mask (Alt)
    try {
      await type("show_window", "Ctrl+Alt+G");
      await eventually(async () => /taken by another application/.test(await problemOf("show_window")), "the taken key is not reported");
      assert.equal(await statusOf("show_window"), "off");
    } finally {
      release();
    }
    // Not a shortcut, or one without a modifier: refused with how to write it.
    await type("upload_clipboard", "Ctrl+Banana");
    await eventually(async () => /is not a shortcut .*e\.g\. Ctrl\+Alt\+U/.test(await problemOf("upload_clipboard")), "a bad shortcut is not reported");
    await type("upload_clipboard", "U");
    await eventually(async () => /has no modifier/.test(await problemOf("upload_clipboard")), "a shortcut without a modifier is not reported");

    // Saved in the app's preferences and shown as configured when Settings opens again.
    const prefs = JSON.parse(await readFile(join(tmp, "data", "app.json"), "utf8"));
    assert.deepEqual(prefs.shortcuts, { pause_watching: "Ctrl+Alt+P" });
    await go("upload");
    await go("settings");
    assert.equal(await row("pause_watching").$('[data-testid="shortcut-input"]').getValue(), "Ctrl+Alt+P");
    assert.equal(await statusOf("pause_watching"), "active");
    await browser.execute(() => {
      const main = document.querySelector("main");
      if (main) main.scrollTop = main.scrollHeight;
    });
    await shot("settings-shortcuts");

    // Cleared: off, and gone from the preferences.
    await closeToasts();
    await row("pause_watching").$('[data-testid="shortcut-clear"]').click();
    await eventually(async () => (await statusOf("pause_watching")) === "off", "the shortcut was not cleared");
    assert.deepEqual(JSON.parse(await readFile(join(tmp, "data", "app.json"), "utf8")).shortcuts, {});
  });
  it("removes the location before upload and says so; a file uploaded before is skipped, its link copied, and uploaded anyway on request", async () => {
    const bytes = makePng(64, [250, 200, 80], [30, 90, 160], {
      "exif:GPSLatitude": "51/1, 30/1, 0/1",
      Copyright: "(c) Dropkey E2E",
    });
    const first = join(tmp, "in", "harbour.png");
    const copy = join(tmp, "in", "harbour copy.png");
    await writeFile(first, bytes);
    await writeFile(copy, bytes);
    const row = (name) => `[data-testid="queue-item"][data-name="${name}"]`;
    /** The row's status line. Its text, not WebDriver's visible text: a row the virtual list
     * keeps just outside the queue's scrolled view reads as empty. */
    const detail = (name) => browser.$(`${row(name)} .detail`).getProperty("textContent");

    await go("upload");
    await pastePaths([first]);
    await eventually(async () => (await queueStates())["harbour.png"] === "done", "harbour.png did not upload");
    await eventually(async () => /removed location/.test(await detail("harbour.png")), "the queue does not say the location was removed");
    await go("history");
    const listed = await eventually(async () => (await historyItems()).find((i) => i.name === "harbour.png"), "harbour.png is not in History");
    const stored = Buffer.from(await (await fetch(listed.url)).arrayBuffer());
    assert.ok(!stored.includes("GPSLatitude"), "the location reached the sandbox");
    assert.ok(stored.includes("(c) Dropkey E2E"), "the copyright was removed too");
    await eventually(
      async () => /removed location/.test(await browser.$('[data-testid="history-item"][data-name="harbour.png"] [data-testid="history-metadata"]').getText()),
      "History does not say the location was removed",
    );

    // The same picture under another name: nothing is sent, the earlier link is on the clipboard.
    await go("upload");
    await pastePaths([copy]);
    await eventually(async () => (await queueStates())["harbour copy.png"] === "done", "the copy did not finish");
    await eventually(async () => /Already uploaded on/.test(await detail("harbour copy.png")), "the queue does not say it was uploaded before");
    await eventually(
      () => execFileSync("xclip", ["-selection", "clipboard", "-o"], { encoding: "utf8" }) === listed.url,
      "the earlier link was not copied",
    );
    await shot("duplicate");
    // Upload anyway: a new upload with a link of its own. (Closing the toasts first, as a user
    // would: they sit over the queue's last row.)
    await closeToasts();
    await browser.$(`${row("harbour copy.png")} [data-testid="upload-anyway"]`).click();
    await go("history");
    const fresh = await eventually(async () => {
      const items = (await historyItems()).filter((i) => i.name === "harbour copy.png");
      return items.length === 2 && items.find((i) => i.url !== listed.url);
    }, "Upload anyway did not upload the file");
    assert.equal((await fetch(fresh.url)).status, 200);

    // Deleting it (confirmed in the dialog) removes it at the provider and from History; the
    // first upload stays.
    await browser.$(`[data-testid="history-item"][data-url="${fresh.url}"] [data-testid="delete-upload"]`).click();
    await browser.$('[data-testid="confirm-ok"]').click();
    await eventually(async () => !(await historyItems()).some((i) => i.url === fresh.url), "the deleted upload is still listed");
    await eventually(async () => (await fetch(fresh.url)).status === 404, "the deleted file is still served");
    assert.equal((await fetch(listed.url)).status, 200);
  });

  it("passes axe-core (WCAG 2.2 A and AA: no serious or critical finding) on every screen and state, light and dark", async () => {
    // The check itself can fail: a planted grey-on-grey line is found.
    await browser.execute(() => {
      const probe = document.createElement("p");
      probe.id = "axe-probe";
      probe.textContent = "hard to read";
      probe.style.cssText = "color:#aaa;background:#bbb";
      document.body.append(probe);
    });
    await assert.rejects(assertAccessible("a planted finding"), /color-contrast \(serious\)/);
    await browser.execute(() => document.getElementById("axe-probe")?.remove());
    // And a field drawn with the old hairline outline is found too.
    await go("settings");
    await browser.execute(() => {
      const probe = document.createElement("input");
      probe.id = "outline-probe";
      probe.setAttribute("aria-label", "probe");
      probe.style.cssText = "border: 1px solid #dde1e6";
      document.querySelector("main")?.prepend(probe);
    });
    await assert.rejects(assertAccessible("a planted faint field"), /outline is under 3:1/);
    await browser.execute(() => document.getElementById("outline-probe")?.remove());

    for (const theme of ["light", "dark"]) {
      await setTheme(theme);
      assert.ok((await assertAccessible(`${theme}: Settings`)) > 0, "no field's outline was checked");
      await browser.$('[data-testid="profile-add"]').click();
      await browser.$('[data-testid="profile-editor"]').waitForExist({ timeout: UI_TIMEOUT_MS });
      await assertAccessible(`${theme}: Settings, adding a profile`);
      await browser.$('[data-testid="profile-editor"]').$("button=Cancel").click();

      await go("upload");
      await browser.$('[data-testid="copy-last-url"]').click();
      await browser.$('[data-testid="toast"]').waitForExist({ timeout: UI_TIMEOUT_MS });
      await assertAccessible(`${theme}: Upload, its queue (uploaded, reused, cancelled) and a toast`);
      // Paused with a file waiting: the sidebar's count badge and a queued row.
      await closeToasts();
      await uploadsPaused(false); // the button acts on what it says: let it say Pause all first
      await browser.$('[data-testid="pause-all"]').click();
      await uploadsPaused(true);
      const waiting = join(tmp, "in", `waiting-${theme}.txt`);
      await writeFile(waiting, `waits while paused (${theme})\n`);
      await pastePaths([waiting]);
      await browser.$('[data-testid="nav-upload"] .count').waitForExist({ timeout: UI_TIMEOUT_MS });
      await assertAccessible(`${theme}: Upload, paused with a file waiting`);
      await browser.$('[data-testid="pause-all"]').click();
      await eventually(async () => {
        await browser.execute(() => {
          const list = document.querySelector('[data-testid="queue-list"]');
          if (list) list.scrollTop = list.scrollHeight;
        });
        return (await queueStates())[`waiting-${theme}.txt`] === "done";
      }, "the waiting file did not upload once resumed");
      // A destination the window refuses: the inline problem, the buttons off, and an error
      // toast for a paste (Ctrl+V) all the same.
      await closeToasts();
      const folder = browser.$('[data-testid="dest-folder"]');
      const kept = await folder.getValue();
      await folder.setValue("/uploads/../elsewhere");
      await pastePaths([join(tmp, "in", "refused.txt")]);
      await browser.$('[data-testid="toast"]').waitForExist({ timeout: UI_TIMEOUT_MS });
      await assertAccessible(`${theme}: Upload, a refused destination`);
      await folder.setValue(kept);
      await closeToasts();

      await go("history");
      await browser.$('[data-testid="history-item"]').waitForExist({ timeout: UI_TIMEOUT_MS });
      await assertAccessible(`${theme}: History`);
      if (theme === "dark") await shot("history-dark");
      await browser.$('[data-testid="history-item"] [data-testid="delete-upload"]').click();
      await browser.$('[data-testid="confirm-dialog"]').waitForExist({ timeout: UI_TIMEOUT_MS });
      await assertAccessible(`${theme}: History, asking to delete`);
      await browser.keys(["Escape"]);
      await eventually(async () => !(await browser.$('[data-testid="confirm-dialog"]').isExisting()), "Escape did not close the dialog");
      await browser.$('[data-testid="history-search"]').setValue("no-such-upload-anywhere");
      await eventually(async () => !(await browser.$('[data-testid="history-item"]').isExisting()), "the search still lists uploads");
      await assertAccessible(`${theme}: History, nothing found`);
      await browser.$('[data-testid="history-search"]').click();
      await browser.keys(["Control", "a"]);
      await browser.keys(["Backspace"]);
      await browser.$('[data-testid="history-item"]').waitForExist({ timeout: UI_TIMEOUT_MS });

      await go("watches");
      await browser.$('[data-testid="watch-item"]').waitForExist({ timeout: UI_TIMEOUT_MS });
      await assertAccessible(`${theme}: Watched folders`);
      await browser.$('[data-testid="watch-item"] [data-testid="watch-edit"]').click();
      await browser.$('[data-testid="watch-edit-save"]').waitForExist({ timeout: UI_TIMEOUT_MS });
      await assertAccessible(`${theme}: Watched folders, editing one`);
      await browser.$('[data-testid="watch-item"]').$("button=Cancel").click();
      await browser.$('[data-testid="watch-new"]').click();
      await browser.$('[data-testid="watch-add"]').waitForExist({ timeout: UI_TIMEOUT_MS });
      await assertAccessible(`${theme}: Watched folders, adding one`);
      await shot(`a11y-${theme}-watches`);
      await browser.$('[data-testid="watches-screen"]').$("button=Cancel").click();
    }
    await setTheme("system");
  });

  it("uploads, copies the link and deletes with the keyboard alone, the focus shown and given back", async () => {
    const file = join(tmp, "in", "keyboard.png");
    await writeFile(file, makePng(48, [20, 120, 90], [240, 240, 200]));
    setClipboard(file); // a file manager's Copy
    await browser.keys(["Control", "1"]);
    await eventually(async () => (await browser.$('[data-testid="nav-upload"]').getAttribute("aria-current")) === "page", "Ctrl+1 did not open Upload");
    await browser.execute(() => document.activeElement?.blur());
    await tabTo('[data-testid="paste-clipboard"]');
    await browser.keys(["Enter"]);
    await browser.execute(() => {
      const list = document.querySelector('[data-testid="queue-list"]');
      if (list) list.scrollTop = list.scrollHeight;
    });
    await eventually(async () => (await queueStates())["keyboard.png"] === "done", "keyboard.png did not upload");
    await eventually(
      async () => /\d+ of \d+ uploaded/.test(await browser.$('[data-testid="queue-spoken"]').getProperty("textContent")),
      "the queue's counts are not in its live region",
    );

    await browser.keys(["Control", "2"]);
    const item = '[data-testid="history-item"][data-name="keyboard.png"]';
    await browser.$(item).waitForExist({ timeout: UI_TIMEOUT_MS });
    const url = await browser.$(item).getAttribute("data-url");
    await browser.execute(() => document.activeElement?.blur());
    await tabTo(`${item} [data-testid="copy-url"]`);
    await browser.keys(["Enter"]);
    await eventually(
      () => execFileSync("xclip", ["-selection", "clipboard", "-o"], { encoding: "utf8" }) === url,
      "Enter on Copy did not put the link on the clipboard",
    );

    await tabTo(`${item} [data-testid="delete-upload"]`);
    await browser.keys(["Enter"]);
    // The dialog takes the focus, on its safe answer; Escape gives it back to Delete.
    await eventually(async () => /^<button[^>]*>Cancel/.test((await focused()).trim()), "the dialog did not take the focus on Cancel");
    await browser.keys(["Escape"]);
    await eventually(async () => (await focused()).includes('aria-label="Delete keyboard.png at the provider"'), "the focus did not return to Delete");
    assert.equal((await fetch(url)).status, 200, "Escape deleted the file");
    await browser.keys(["Enter"]);
    await tabTo('[data-testid="confirm-ok"]');
    await browser.keys(["Enter"]);
    await eventually(async () => !(await historyItems()).some((i) => i.url === url), "the deleted upload is still listed");
    await eventually(async () => (await fetch(url)).status === 404, "the deleted file is still served");
    // The keyboard stays in the list, not thrown back to the top of the window.
    await eventually(
      async () => browser.execute(() => !!document.activeElement?.closest('[data-testid="history"], [data-testid="history-search"]')),
      `the focus left History after the delete (${await focused()})`,
    );

    // Inline forms: Edit opens one on its first field, Cancel gives the focus back to Edit.
    const inField = (form) =>
      browser.execute((sel) => !!document.activeElement?.closest(sel) && document.activeElement.matches("input, select, textarea"), form);
    await browser.keys(["Control", "4"]);
    const card = '[data-testid="profile-item"][data-profile="cl"]';
    await browser.$(card).waitForExist({ timeout: UI_TIMEOUT_MS });
    await browser.execute(() => document.activeElement?.blur());
    await tabTo(`${card} [data-testid="profile-edit"]`);
    await browser.keys(["Enter"]);
    await eventually(() => inField('[data-testid="profile-editor"]'), `the profile form did not take the focus (${await focused()})`);
    await tabTo('[data-testid="profile-cancel"]');
    await browser.keys(["Enter"]);
    await eventually(async () => browser.execute((sel) => document.activeElement?.matches(sel), `${card} [data-testid="profile-edit"]`), "the focus did not return to the profile's Edit");

    await browser.keys(["Control", "3"]);
    const watch = '[data-testid="watch-item"]:first-child';
    await browser.$(watch).waitForExist({ timeout: UI_TIMEOUT_MS });
    await browser.execute(() => document.activeElement?.blur());
    await tabTo(`${watch} [data-testid="watch-edit"]`);
    await browser.keys(["Enter"]);
    await eventually(() => inField(`${watch} form`), `the watch's form did not take the focus (${await focused()})`);
    await tabTo(`${watch} [data-testid="watch-edit-cancel"]`);
    await browser.keys(["Enter"]);
    await eventually(async () => browser.execute((sel) => document.activeElement?.matches(sel), `${watch} [data-testid="watch-edit"]`), "the focus did not return to the watch's Edit");
  });
});

describe("Dropkey app with a config it cannot read", { timeout: 180_000 }, () => {
  let tmp;
  let driver;
  let browser;

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), "dropkey-e2e-broken-"));
    await mkdir(join(tmp, "data"));
    await mkdir(join(tmp, "xdg-config"), { recursive: true });
    // A hand edit gone wrong: a provider Dropkey does not know.
    await writeFile(join(tmp, "config.toml"), '[profiles.team]\nprovider = "dropbox"\n');
    ({ driver, browser } = await openSession(tmp, () => {}));
  }, { timeout: 60_000 });

  after(() => closeSession(browser, driver, tmp));

  it("says on every screen why it could not start and what to fix, instead of waiting at Starting…", async () => {
    const banner = browser.$('[data-testid="start-error"]');
    await banner.waitForExist({ timeout: UI_TIMEOUT_MS });
    const text = await banner.getText();
    assert.match(text, /^Dropkey could not start\./, text);
    assert.match(text, /config\.toml:2:\d+: profiles\.team\.provider: unknown provider/, text);
    assert.match(text, /provider = "imagekit" or provider = "cloudinary"/, text);
    assert.equal((await browser.$('[data-testid="app-status"]').getText()).trim(), "Not started");
    // The Upload screen does not blame the user for a profile it could not load.
    assert.ok(!(await browser.$("p.problem").isExisting()), "the Upload screen says to choose a profile");
    await checkAccessible(browser, "Upload, not started");
    for (const screen of ["history", "watches", "settings"]) {
      await browser.$(`[data-testid="nav-${screen}"]`).click();
      assert.ok(await banner.isExisting(), `no start error on ${screen}`);
    }
  });
});
