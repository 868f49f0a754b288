/** Milliseconds of a Go duration as Terraform's timeouts blocks take them: "30m", "1h30m", "90s". */
export function parseDuration(text: string): number {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text.trim())
    throw new Error(`"${text}" is not a duration: use e.g. "90s", "30m", "1h30m".`);
  return parts.reduce((sum, p) => sum + Number(p[1]) * units[p[2]!]!, 0);
}
