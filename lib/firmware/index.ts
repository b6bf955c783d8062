export * from './results';
export * from './package-server';
export * from './job';
export * from './campaign';
export * from './store';
export * from './resume';
