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
// Environment:
//   DROPKEY_APP              app binary (default: <repo>/target/debug/dropkey-app)
//   TAURI_DRIVER             tauri-driver binary (default: on PATH, else ~/.cargo/bin/tauri-driver)
//   DROPKEY_E2E_SCREENSHOT   if set, a PNG of the window is saved there

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { accessSync, constants, existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { homedir, tmpdir } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

import { remote } from "webdriverio";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const APP = resolve(process.env.DROPKEY_APP ?? join(REPO, "target/debug/dropkey-app"));
const SECRET = "shhh-e2e-secret-value";

const CONFIG = `[profiles.ik]
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
  };
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

describe("Dropkey app", { timeout: 120_000 }, () => {
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
    await writeFile(join(tmp, "config.toml"), CONFIG);
    await mkdir(join(tmp, "data"));

    const port = await freePort();
    let nativePort = await freePort();
    while (nativePort === port) nativePort = await freePort();
    driver = spawn(
      findTauriDriver(),
      ["--port", String(port), "--native-port", String(nativePort)],
      { env: appEnv(tmp), detached: true, stdio: ["ignore", "pipe", "pipe"] },
    );
    driver.on("error", (err) => {
      driverLog += `\nspawn error: ${err.message}`;
    });
    for (const stream of [driver.stdout, driver.stderr]) {
      stream.setEncoding("utf8");
      stream.on("data", (chunk) => {
        driverLog = (driverLog + chunk).slice(-20_000);
      });
    }
    await waitForPort(port, driver, PORT_TIMEOUT_MS).catch((err) => {
      throw new Error(`${err.message}\n${driverLog}`);
    });

    browser = await remote({
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
  }, { timeout: 60_000 });

  after(async () => {
    try {
      if (browser) await browser.deleteSession().catch(() => {});
    } finally {
      await stopProcessGroup(driver);
      if (tmp) await rm(tmp, { recursive: true, force: true });
    }
  });

  it("lists the configured profiles with where their keys come from", async () => {
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

    // Exactly the config's profiles, plus the built-in sandbox if the app has one.
    assert.equal(new Set(names).size, names.length, `duplicate profiles: ${names}`);
    assert.deepEqual(names.filter((n) => n !== "sandbox").sort(), ["cl", "ik"]);
    if (byProfile.sandbox) assert.ok(byProfile.sandbox.isDefault, "sandbox is not the default");
    assert.deepEqual(names, uiOrder(profiles), "profiles are not in the UI's order");

    assert.equal(byProfile.cl.source, "env");
    assert.equal(byProfile.cl.badge, "Key set (env)");
    assert.equal(byProfile.ik.source, "missing");
    assert.equal(byProfile.ik.badge, "Key not set");

    if (process.env.DROPKEY_E2E_SCREENSHOT) {
      // The DOM can be ahead of the last paint (seen on a cold start): let two frames pass.
      await browser.executeAsync((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
      await browser.saveScreenshot(resolve(process.env.DROPKEY_E2E_SCREENSHOT));
    }
  });

  it("never puts a secret in the page", async () => {
    const source = await browser.getPageSource();
    assert.ok(source.includes('data-testid="profile-list"'), "the profile list is not rendered");
    assert.ok(!source.includes(SECRET), "the page source contains the secret");
  });
});
