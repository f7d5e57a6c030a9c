/** The part of parse-prometheus-text-format (which ships no types) the metrics tests use. */
declare module 'parse-prometheus-text-format' {
  interface ParsedSample {
    /** As written: "3", "1.5e3", "+Inf". */
    value: string;
    labels?: Record<string, string>;
  }
  interface ParsedFamily {
    name: string;
    help: string;
    /** Upper case: "COUNTER", "GAUGE", "UNTYPED", … */
    type: string;
    metrics: ParsedSample[];
  }
  export default function parsePrometheusTextFormat(text: string): ParsedFamily[];
}
