import type { MessageInitShape } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { AudioFormat, VoiceGender, type AudioStreamService, type ConverseResponseSchema, type SynthesizeResponseSchema } from "../../gen/portcullis/v1/audio_stream_pb.js";
import type { AudioService, SynthesisEvent } from "../domain/audio/audio-service.ts";
import type { AudioChunk } from "../domain/audio/audio-chunker.ts";
import type { ConversationEvent, Conversations } from "../domain/audio/conversation.ts";
import type { SpeechStreamHeader, StreamTotals } from "../domain/audio/speech-stream.ts";
import type { AudioEncoding, VoiceGender as DomainGender } from "../domain/audio/speech-engine.ts";
import type { SynthesisInput } from "../domain/audio/synthesis-options.ts";
import { finishReasonToProto, usageMessage } from "./ai-service.ts";
import { callerOf } from "./caller.ts";

const FROM_PROTO: Readonly<Partial<Record<AudioFormat, AudioEncoding>>> = {
  [AudioFormat.PCM_S16LE]: "pcm_s16le",
  [AudioFormat.WAV]: "wav",
  [AudioFormat.MP3]: "mp3",
  [AudioFormat.OGG_OPUS]: "ogg_opus",
  [AudioFormat.MULAW]: "mulaw",
};
const TO_PROTO: Readonly<Record<AudioEncoding, AudioFormat>> = {
  pcm_s16le: AudioFormat.PCM_S16LE,
  wav: AudioFormat.WAV,
  mp3: AudioFormat.MP3,
  ogg_opus: AudioFormat.OGG_OPUS,
  mulaw: AudioFormat.MULAW,
};
const GENDER: Readonly<Record<DomainGender, VoiceGender>> = {
  unspecified: VoiceGender.UNSPECIFIED,
  female: VoiceGender.FEMALE,
  male: VoiceGender.MALE,
  neutral: VoiceGender.NEUTRAL,
};

/** The request's format: unset is PCM (the contract's default); a number this server does not know is "unsupported". */
export function encodingFromProto(format: AudioFormat): AudioEncoding | "unsupported" | undefined {
  if (format === AudioFormat.UNSPECIFIED) return undefined;
  return FROM_PROTO[format] ?? "unsupported";
}

function headerMessage(h: SpeechStreamHeader, estimatedDurationMs: number | undefined) {
  return {
    format: TO_PROTO[h.encoding],
    sampleRateHz: h.sampleRateHz,
    channels: h.channels,
    voice: h.voiceId,
    ...(estimatedDurationMs === undefined ? {} : { estimatedDuration: durationFromMs(estimatedDurationMs) }),
    contentType: h.contentType,
    chunkSizeBytes: h.chunkBytes,
  };
}

function chunkMessage(c: AudioChunk) {
  return { data: c.data, sequence: c.sequence, offsetBytes: BigInt(c.offsetBytes), startMs: BigInt(c.startMs) };
}

function endMessage(totals: StreamTotals) {
  return { totalBytes: BigInt(totals.bytes), totalChunks: totals.chunks, duration: durationFromMs(totals.durationMs) };
}

function toMessage(event: SynthesisEvent): MessageInitShape<typeof SynthesizeResponseSchema> {
  switch (event.kind) {
    case "header":
      return { payload: { case: "header", value: headerMessage(event.header, event.estimatedDurationMs) } };
    case "chunk":
      return { payload: { case: "chunk", value: chunkMessage(event.chunk) } };
    case "end":
      return { payload: { case: "end", value: endMessage(event.totals) } };
  }
}

function toConverseMessage(event: ConversationEvent): MessageInitShape<typeof ConverseResponseSchema> {
  switch (event.kind) {
    case "header":
      // The answer's length is not known before it is written: no estimated duration.
      return { payload: { case: "header", value: headerMessage(event.header, undefined) } };
    case "text":
      return { payload: { case: "textDelta", value: event.text } };
    case "chunk":
      return { payload: { case: "audioChunk", value: chunkMessage(event.chunk) } };
    case "end": {
      const end = event.end;
      return {
        payload: {
          case: "end",
          value: { audio: endMessage(end.audio), text: end.text, provider: end.provider, model: end.model, usage: usageMessage(end), finishReason: finishReasonToProto(end.finishReason) },
        },
      };
    }
  }
}

/** AudioStreamService: thin conversions around the audio domain (src/domain/audio). */
export function createAudioStreamHandlers(service: AudioService, conversations: Conversations): ServiceImpl<typeof AudioStreamService> {
  return {
    async *synthesize(req, ctx) {
      const input: SynthesisInput = {
        text: req.text,
        voice: req.voice,
        encoding: encodingFromProto(req.format),
        sampleRateHz: req.sampleRateHz,
        chunking: req.chunking.case === "chunkSizeBytes" ? { bytes: req.chunking.value } : req.chunking.case === "chunkDurationMs" ? { durationMs: req.chunking.value } : undefined,
        speakingRate: req.speakingRate,
      };
      for await (const event of service.synthesize(callerOf(ctx), input, ctx.signal)) {
        yield toMessage(event);
      }
    },

    async *converse(req, ctx) {
      const input = {
        query: { provider: req.provider, model: req.model, prompt: req.prompt, systemPrompt: req.systemPrompt, maxTokens: req.maxTokens, temperature: req.temperature },
        speech: {
          voice: req.voice,
          encoding: encodingFromProto(req.format),
          sampleRateHz: req.sampleRateHz,
          // 0 is "the server default"; anything else is checked like Synthesize's chunk_size_bytes.
          chunking: req.chunkSizeBytes === 0 ? undefined : { bytes: req.chunkSizeBytes },
          speakingRate: undefined,
        },
      };
      for await (const event of conversations.converse(callerOf(ctx), input, ctx.signal)) {
        yield toConverseMessage(event);
      }
    },

    async listVoices(req, ctx) {
      const voices = await service.listVoices(callerOf(ctx), req.language);
      return {
        voices: voices.map((v) => ({
          id: v.id,
          name: v.name,
          language: v.language,
          gender: GENDER[v.gender],
          style: v.style,
          sampleRatesHz: [...v.sampleRatesHz],
          defaultSampleRateHz: v.defaultSampleRateHz,
          isDefault: v.isDefault,
        })),
      };
    },
  };
}
