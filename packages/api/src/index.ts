export * from './conditions.js';
export * from './kind.js';
export * from './kinds/index.js';
export * from './label-selector.js';
export * from './merge-patch.js';
export * from './meta.js';
export * from './problems.js';
export * from './engines.js';
