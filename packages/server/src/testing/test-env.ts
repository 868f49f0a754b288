/** The one place test helpers read the host's environment: where server binaries are found. */
export function hostSearchPath(): string {
  return process.env.PATH ?? '';
}
