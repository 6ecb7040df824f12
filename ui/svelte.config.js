import { vitePreprocess } from "@sveltejs/vite-plugin-svelte";

/** Read by vite-plugin-svelte and svelte-check alike. */
export default {
  preprocess: vitePreprocess(),
};
