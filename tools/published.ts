/** DeepSeek's published configs (data/published) with the totals and activated counts their papers state. */
import v2Lite from '../data/published/deepseek-v2-lite.json' with { type: 'json' };
import v2 from '../data/published/deepseek-v2.json' with { type: 'json' };
import v3 from '../data/published/deepseek-v3.json' with { type: 'json' };

export const publishedModels: { name: string; config: Record<string, unknown>; total: number; activated: number }[] = [
  { name: 'DeepSeek-V2-Lite', config: v2Lite, total: 15.7e9, activated: 2.4e9 },
  { name: 'DeepSeek-V2', config: v2, total: 236e9, activated: 21e9 },
  { name: 'DeepSeek-V3', config: v3, total: 671e9, activated: 37e9 },
];
