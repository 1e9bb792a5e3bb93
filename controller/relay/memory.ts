// The relay's memory pools, made from one budget (budget.ts).
import { type MemoryBudget, Pool } from './budget.ts'
import { BatchBuffers, FramePool } from './frames.ts'

// The memory pools of budget.ts; `rings` is the frame stores' pool. Listeners' batch buffers
// are within the share of the listeners pool each listener takes (its socket high-water mark).
export interface RelayMemory {
  budget: MemoryBudget
  frames: FramePool
  batches: BatchBuffers
  listeners: Pool
  inflight: Pool
  inflate: Pool
}

export function createRelayMemory(budget: MemoryBudget): RelayMemory {
  return {
    budget,
    frames: new FramePool(budget.rings),
    batches: new BatchBuffers(),
    listeners: new Pool(budget.listeners),
    inflight: new Pool(budget.inflight),
    inflate: new Pool(budget.inflate),
  }
}
