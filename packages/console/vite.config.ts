import { defineConfig } from 'vite';

// React without a plugin: esbuild compiles the JSX (automatic runtime). The server serves dist/ at /.
export default defineConfig({
  root: import.meta.dirname,
  esbuild: { jsx: 'automatic' },
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false },
  logLevel: 'warn',
});
