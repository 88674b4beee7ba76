export * from './common';
export * from './logs';
export * from './metrics';
export * from './signal';
export * from './traces';
