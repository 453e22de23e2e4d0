import type { ModelType } from './model.entity';
import type { MaxTokensField } from './provider.entity';

/** Seeded by `npm start` (CONTRACT §2). Prices in micro-USD per 1M tokens. */
export const STARTER_PROVIDERS: Array<{ id: string; baseUrl: string; maxTokensField: MaxTokensField }> = [
  { id: 'deepseek', baseUrl: 'https://api.deepseek.com/v1', maxTokensField: 'max_tokens' },
  { id: 'openai', baseUrl: 'https://api.openai.com/v1', maxTokensField: 'max_completion_tokens' },
  { id: 'dashscope', baseUrl: 'https://dashscope-intl.aliyuncs.com/compatible-mode/v1', maxTokensField: 'max_tokens' },
];

export interface StarterModel {
  id: string;
  providerId: string;
  upstreamModel: string;
  type: ModelType;
  inputPriceMicros: number;
  outputPriceMicros: number;
  maxOutputTokens: number;
  contextLength: number;
}

export const STARTER_MODELS: StarterModel[] = [
  {
    id: 'deepseek-v4-flash',
    providerId: 'deepseek',
    upstreamModel: 'deepseek-v4-flash',
    type: 'chat',
    inputPriceMicros: 270_000,
    outputPriceMicros: 1_100_000,
    maxOutputTokens: 8_192,
    contextLength: 128_000,
  },
  {
    id: 'gpt-4o-mini',
    providerId: 'openai',
    upstreamModel: 'gpt-4o-mini',
    type: 'chat',
    inputPriceMicros: 150_000,
    outputPriceMicros: 600_000,
    maxOutputTokens: 16_384,
    contextLength: 128_000,
  },
  {
    id: 'Qwen/Qwen-Plus',
    providerId: 'dashscope',
    upstreamModel: 'qwen-plus',
    type: 'chat',
    inputPriceMicros: 400_000,
    outputPriceMicros: 1_200_000,
    maxOutputTokens: 8_192,
    contextLength: 131_072,
  },
  {
    id: 'text-embedding-3-small',
    providerId: 'openai',
    upstreamModel: 'text-embedding-3-small',
    type: 'embedding',
    inputPriceMicros: 20_000,
    outputPriceMicros: 0,
    maxOutputTokens: 1,
    contextLength: 8_191,
  },
];
