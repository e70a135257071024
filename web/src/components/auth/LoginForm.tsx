"use client";

import { zodResolver } from "@hookform/resolvers/zod";
import Link from "next/link";
import { useRouter, useSearchParams } from "next/navigation";
import { useState } from "react";
import { useForm } from "react-hook-form";
import { z } from "zod";
import { applyServerErrors } from "@/components/forms";
import { Button, ErrorAlert, TextField } from "@/components/ui";
import { login, secondFactor } from "@/lib/auth-client";
import type { AccessToken } from "@/lib/auth-client";
import type { ServerError } from "@/lib/errors";
import { useSession } from "@/lib/session";

const schema = z.object({
  email: z.string().trim().min(1, "Enter your email"),
  password: z.string().min(1, "Enter your password"),
});
type Values = z.infer<typeof schema>;

/** Where to go after log-in: the page that was wanted, if it is one of ours. */
export function afterLogin(next: string | null): string {
  if (!next || next.startsWith("//")) return "/app";
  return next.startsWith("/app") || next.startsWith("/invite/") ? next : "/app";
}

export function LoginForm() {
  const router = useRouter();
  const params = useSearchParams();
  const { signedIn } = useSession();
  const [errors, setErrors] = useState<ServerError[]>([]);
  const form = useForm<Values>({ resolver: zodResolver(schema), defaultValues: { email: "", password: "" } });
  const { register, handleSubmit, setError, formState } = form;

  const [challenge, setChallenge] = useState<string | null>(null);

  const onSubmit = handleSubmit(async (values) => {
    setErrors([]);
    const result = await login(values.email, values.password);
    if (!result.ok) {
      const asked = result.errors.find((error) => error.code === "SECOND_FACTOR_REQUIRED" && error.challenge);
      if (asked?.challenge) {
        setChallenge(asked.challenge);
        return;
      }
      setErrors(applyServerErrors(result.errors, ["email", "password"], setError));
      return;
    }
    signedIn(result.session);
    router.replace(afterLogin(params.get("next")));
  });

  const next = params.get("next");
  if (challenge) {
    return (
      <SecondFactorForm
        challenge={challenge}
        onDone={(session) => {
          signedIn(session);
          router.replace(afterLogin(next));
        }}
        onRestart={() => setChallenge(null)}
      />
    );
  }
  return (
    <form onSubmit={onSubmit} noValidate className="flex flex-col gap-4">
      <ErrorAlert errors={errors} />
      <TextField label="Email" type="email" autoComplete="email" error={formState.errors.email?.message} {...register("email")} />
      <TextField
        label="Password"
        type="password"
        autoComplete="current-password"
        error={formState.errors.password?.message}
        {...register("password")}
      />
      <Button type="submit" disabled={formState.isSubmitting}>
        Log in
      </Button>
      <div className="flex flex-wrap justify-between gap-2 text-sm">
        <Link className="text-indigo-700 underline" href="/forgot-password">
          Forgot password?
        </Link>
        <Link className="text-indigo-700 underline" href={next ? `/signup?next=${encodeURIComponent(next)}` : "/signup"}>
          Create an account
        </Link>
      </div>
    </form>
  );
}

const codeSchema = z.object({ code: z.string().trim().min(1, "Enter the code") });

/** A log-in's second step: a code from the authenticator app, or a recovery code. */
function SecondFactorForm({
  challenge,
  onDone,
  onRestart,
}: {
  challenge: string;
  onDone: (session: AccessToken) => void;
  onRestart: () => void;
}) {
  const [errors, setErrors] = useState<ServerError[]>([]);
  const { register, handleSubmit, setError, formState } = useForm<z.infer<typeof codeSchema>>({
    resolver: zodResolver(codeSchema),
    defaultValues: { code: "" },
  });
  const onSubmit = handleSubmit(async ({ code }) => {
    setErrors([]);
    const result = await secondFactor(challenge, code);
    if (!result.ok) {
      setErrors(applyServerErrors(result.errors, ["code"], setError));
      return;
    }
    onDone(result.session);
  });
  return (
    <form onSubmit={onSubmit} noValidate className="flex flex-col gap-4">
      <p className="text-sm">Enter the code from your authenticator app, or one of your recovery codes.</p>
      <ErrorAlert errors={errors} />
      <TextField
        label="Authentication code"
        autoComplete="one-time-code"
        inputMode="numeric"
        autoFocus
        error={formState.errors.code?.message}
        {...register("code")}
      />
      <Button type="submit" disabled={formState.isSubmitting}>
        Verify
      </Button>
      {errors.length > 0 ? (
        <Button variant="secondary" onClick={onRestart}>
          Start again
        </Button>
      ) : null}
    </form>
  );
}
