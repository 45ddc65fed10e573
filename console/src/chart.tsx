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

/**
 * Bars split by series (e.g. transactions by hour, stacked by channel), in plain SVG like BarChart:
 * one colour per series (told apart by a legend with the same swatches), each segment titled, and
 * the figures as the image's text alternative.
 */
export function StackedBarChart({ title, labels, series, format }: { title: string; labels: string[]; series: { name: string; values: number[] }[]; format(value: number): string }) {
  const totals = labels.map((_, i) => series.reduce((sum, s) => sum + (s.values[i] ?? 0), 0));
  const max = Math.max(1, ...totals);
  const width = 24;
  const gap = 6;
  const height = 120;
  const said = labels
    .map((label, i) => (totals[i]! > 0 ? `${label}: ${series.filter((s) => s.values[i]! > 0).map((s) => `${s.name} ${format(s.values[i]!)}`).join(', ')}` : ''))
    .filter(Boolean)
    .join('; ');
  return (
    <figure class="chart">
      <svg role="img" aria-label={`${title}: ${said || '0'}`} viewBox={`0 0 ${labels.length * (width + gap)} ${height + 20}`} width={labels.length * (width + gap)} height={height + 20}>
        {labels.map((label, i) => {
          let top = height;
          return (
            <g key={label}>
              {series.map((s, k) => {
                const h = Math.round(((s.values[i] ?? 0) / max) * height);
                if (h === 0) return null;
                top -= h;
                return (
                  <rect key={s.name} x={i * (width + gap)} y={top} width={width} height={h} class={`bar series-${k % 6}`}>
                    <title>{`${label} ${s.name}: ${format(s.values[i]!)}`}</title>
                  </rect>
                );
              })}
              <text x={i * (width + gap) + width / 2} y={height + 14} text-anchor="middle" class="axis">
                {label}
              </text>
            </g>
          );
        })}
      </svg>
      <ul class="legend">
        {series.map((s, k) => (
          <li key={s.name}>
            <span class={`swatch series-${k % 6}`} aria-hidden="true" /> {s.name}
          </li>
        ))}
      </ul>
      <figcaption>{title}</figcaption>
    </figure>
  );
}

/**
 * Signed amounts side by side (e.g. net per participant): one horizontal bar each from a zero line,
 * to the right when positive, to the left (another colour) when negative, the figure beside it.
 */
export function NetChart({ title, bars, format }: { title: string; bars: { label: string; value: number }[]; format(value: number): string }) {
  const max = Math.max(1, ...bars.map((b) => Math.abs(b.value)));
  const half = 160;
  const labelWidth = 180;
  const row = 22;
  const zero = labelWidth + half;
  return (
    <figure class="chart">
      <svg role="img" aria-label={`${title}: ${bars.map((b) => `${b.label} ${format(b.value)}`).join(', ') || '0'}`} viewBox={`0 0 ${labelWidth + 2 * half + 90} ${bars.length * row + 4}`} width={labelWidth + 2 * half + 90} height={bars.length * row + 4}>
        <line x1={zero} x2={zero} y1={0} y2={bars.length * row + 4} class="zero" />
        {bars.map((b, i) => {
          const w = Math.round((Math.abs(b.value) / max) * half);
          return (
            <g key={b.label}>
              <text x={labelWidth - 6} y={i * row + 15} text-anchor="end" class="axis">
                {b.label}
              </text>
              <rect x={b.value < 0 ? zero - w : zero} y={i * row + 4} width={w} height={row - 8} class={b.value < 0 ? 'bar negative' : 'bar'}>
                <title>{`${b.label}: ${format(b.value)}`}</title>
              </rect>
              <text x={zero + half + 6} y={i * row + 15} class="axis">
                {format(b.value)}
              </text>
            </g>
          );
        })}
      </svg>
      <figcaption>{title}</figcaption>
    </figure>
  );
}
