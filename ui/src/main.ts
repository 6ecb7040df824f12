import { mount } from "svelte";

import App from "./App.svelte";
import { createTauriApi } from "./lib/api";
import { applyTheme, loadChoice } from "./lib/theme";
import "./app.css";

// Before the first paint, so a dark desktop never sees a light flash.
applyTheme(loadChoice(), false);

const target = document.getElementById("app");
if (!target) throw new Error("index.html has no #app element");

export default mount(App, { target, props: { api: createTauriApi() } });
