/** A diagnostic as tfplugin6.Diagnostic (the message proto-loader encodes). */
export interface Diagnostic {
  severity: 'ERROR' | 'WARNING';
  summary: string;
  detail: string;
  attribute?: { steps: Array<{ attribute_name: string }> };
}

export function error(summary: string, detail = '', attribute?: string): Diagnostic {
  return { severity: 'ERROR', summary, detail, ...(attribute ? { attribute: at(attribute) } : {}) };
}

export function warning(summary: string, detail = '', attribute?: string): Diagnostic {
  return { severity: 'WARNING', summary, detail, ...(attribute ? { attribute: at(attribute) } : {}) };
}

const at = (name: string) => ({ steps: [{ attribute_name: name }] });
