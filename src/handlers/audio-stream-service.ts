import type { MessageInitShape } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { AudioFormat, VoiceGender, type AudioStreamService, type SynthesizeResponseSchema } from "../../gen/portcullis/v1/audio_stream_pb.js";
import type { AudioService, SynthesisEvent } from "../domain/audio/audio-service.ts";
import type { AudioEncoding, VoiceGender as DomainGender } from "../domain/audio/speech-engine.ts";
import type { SynthesisInput } from "../domain/audio/synthesis-options.ts";
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

function toMessage(event: SynthesisEvent): MessageInitShape<typeof SynthesizeResponseSchema> {
  switch (event.kind) {
    case "header": {
      const h = event.header;
      return {
        payload: {
          case: "header",
          value: {
            format: TO_PROTO[h.encoding],
            sampleRateHz: h.sampleRateHz,
            channels: h.channels,
            voice: h.voiceId,
            estimatedDuration: durationFromMs(event.estimatedDurationMs),
            contentType: h.contentType,
            chunkSizeBytes: h.chunkBytes,
          },
        },
      };
    }
    case "chunk": {
      const c = event.chunk;
      return { payload: { case: "chunk", value: { data: c.data, sequence: c.sequence, offsetBytes: BigInt(c.offsetBytes), startMs: BigInt(c.startMs) } } };
    }
    case "end":
      return { payload: { case: "end", value: { totalBytes: BigInt(event.totals.bytes), totalChunks: event.totals.chunks, duration: durationFromMs(event.totals.durationMs) } } };
  }
}

/** AudioStreamService: thin conversions around the audio domain (src/domain/audio). Converse comes with AI queries. */
export function createAudioStreamHandlers(service: AudioService): Partial<ServiceImpl<typeof AudioStreamService>> {
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
