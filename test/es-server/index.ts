export type { EngineFlavor, FaultController, FaultRule, RecordedRequest, TestEngine, TestEngineOptions } from './types.js';
export { startTestEngine } from './engine.js';
