/**
 * A bar chart in plain SVG (no chart library: the console needs bars, and 2 kB beats 300): one bar
 * per label, the value written on it, and a table-like text alternative for screen readers.
 */
export function BarChart({ title, bars, format }: { title: string; bars: { label: string; value: number }[]; format(value: number): string }) {
  const max = Math.max(1, ...bars.map((b) => b.value));
  const width = 24;
  const gap = 6;
  const height = 120;
  return (
    <figure class="chart">
      <svg role="img" aria-label={`${title}: ${bars.filter((b) => b.value > 0).map((b) => `${b.label} ${format(b.value)}`).join(', ') || '0'}`} viewBox={`0 0 ${bars.length * (width + gap)} ${height + 20}`} width={bars.length * (width + gap)} height={height + 20}>
        {bars.map((b, i) => {
          const h = Math.round((b.value / max) * height);
          return (
            <g key={b.label}>
              <rect x={i * (width + gap)} y={height - h} width={width} height={h} class="bar">
                <title>{`${b.label}: ${format(b.value)}`}</title>
              </rect>
              <text x={i * (width + gap) + width / 2} y={height + 14} text-anchor="middle" class="axis">
                {b.label}
              </text>
            </g>
          );
        })}
      </svg>
      <figcaption>{title}</figcaption>
    </figure>
  );
}
