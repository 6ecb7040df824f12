import { svelte } from "@sveltejs/vite-plugin-svelte";
import { defineConfig } from "vitest/config";

// Served to the Tauri window at http://localhost:1420 in dev (tauri.conf.json `devUrl`);
// `vite build` writes ui/dist, which the app embeds (`frontendDist`).
export default defineConfig({
  plugins: [svelte()],
  // Keep the Tauri CLI's output readable when it runs `npm run dev`.
  clearScreen: false,
  server: {
    port: 1420,
    strictPort: true,
    watch: { ignored: ["**/src-tauri/**", "**/target/**"] },
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // The CSP has no 'unsafe-inline': never inline assets or CSS into the HTML.
    assetsInlineLimit: 0,
    cssCodeSplit: false,
  },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});
