import { mount } from "svelte";

import App from "./App.svelte";
import { createTauriApi } from "./lib/api";
import "./app.css";

const target = document.getElementById("app");
if (!target) throw new Error("index.html has no #app element");

export default mount(App, { target, props: { api: createTauriApi() } });
