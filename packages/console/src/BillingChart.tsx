import { useEffect, useRef } from 'react';
import { formatMoney } from '@kumo/api/money';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { CostReport } from './BillingPage.js';
import { money } from './money.js';

const COLOURS = ['#2557d6', '#e07b00', '#1e7b34', '#9c27b0', '#b3261e', '#00838f', '#6d4c41'];
const HEIGHT = 260;
const MIN_WIDTH = 300;
/** Whole minor units between the value axis' ticks: 1, 2, 5, 10, 20, 50, … */
const INCREMENTS = Array.from({ length: 36 }, (_, i) => [1, 2, 5][i % 3]! * 10 ** Math.floor(i / 3));

/**
 * The month's daily cost as bars stacked per project: each series is drawn at the sum of its
 * project and the ones before it, tallest first, so that each project shows its own part. Values
 * stay integers in the minor unit (the axis and the legend format them exactly); the chart
 * follows its container's width.
 */
export function DailyChart({ report }: { report: CostReport }) {
  const box = useRef<HTMLDivElement>(null);
  const { currency } = report;
  const projects = [...new Set(report.days.map((d) => d.project))].sort();
  const key = projects.join(',');
  useEffect(() => {
    const element = box.current!;
    const [year, month] = report.period.month.split('-').map(Number) as [number, number];
    const length = new Date(Date.UTC(year, month, 0)).getUTCDate();
    const names = key ? key.split(',') : [];
    const own = names.map(() => new Array<number>(length).fill(0));
    for (const d of report.days) own[names.indexOf(d.project)]![Number(d.date.slice(8)) - 1]! += d.amount;
    const stacked = own.map((_, j) =>
      own[0]!.map((__, day) => own.slice(0, j + 1).reduce((sum, row) => sum + row[day]!, 0)),
    );
    const order = names.map((_, j) => names.length - 1 - j);
    const width = () => {
      const { paddingLeft, paddingRight } = getComputedStyle(element);
      return Math.max(MIN_WIDTH, element.clientWidth - parseFloat(paddingLeft) - parseFloat(paddingRight));
    };
    const chart = new uPlot(
      {
        width: width(),
        height: HEIGHT,
        scales: { x: { time: false, range: [0.5, length + 0.5] } },
        axes: [
          { label: 'Day', values: (_u, ticks) => ticks.map((t) => (Number.isInteger(t) ? String(t) : '')) },
          {
            size: 80,
            incrs: INCREMENTS,
            values: (_u, ticks) => ticks.map((t) => (currency ? formatMoney(Math.round(t), currency) : '')),
          },
        ],
        series: [
          { label: 'Day' },
          ...order.map((j) => ({
            label: names[j]!,
            stroke: COLOURS[j % COLOURS.length]!,
            fill: COLOURS[j % COLOURS.length]!,
            paths: uPlot.paths.bars!({ size: [0.7, 40] }),
            points: { show: false },
            value: (_u: uPlot, _v: number | null, _s: number, day: number | null) =>
              day === null ? '—' : money(own[j]![day]!, currency),
          })),
        ],
      },
      [Array.from({ length }, (_, i) => i + 1), ...order.map((j) => stacked[j]!)],
      element,
    );
    // The box's width is its container's (the chart inside it scrolls rather than widening it).
    const resized = new ResizeObserver(() => {
      if (chart.width !== width()) chart.setSize({ width: width(), height: HEIGHT });
    });
    resized.observe(element);
    return () => {
      resized.disconnect();
      chart.destroy();
    };
  }, [report, currency, key]);
  return (
    <div
      ref={box}
      className="chart"
      role="img"
      aria-label={`Daily cost by project in ${report.period.month}`}
      data-series={key}
    />
  );
}
