"use client";

import { zodResolver } from "@hookform/resolvers/zod";
import Link from "next/link";
import { useSearchParams } from "next/navigation";
import { useEffect, useState } from "react";
import { useForm } from "react-hook-form";
import { useMutation } from "urql";
import { z } from "zod";
import { applyServerErrors } from "@/components/forms";
import { Button, ErrorAlert, Loading, TextField } from "@/components/ui";
import { graphql } from "@/gql";
import { fromCombined, type ServerError } from "@/lib/errors";

const RequestReset = graphql(`
  mutation RequestPasswordReset($email: String!) {
    requestPasswordReset(email: $email)
  }
`);

const ResetPassword = graphql(`
  mutation ResetPassword($token: String!, $newPassword: String!) {
    resetPassword(token: $token, newPassword: $newPassword)
  }
`);

const VerifyEmail = graphql(`
  mutation VerifyEmail($token: String!) {
    verifyEmail(token: $token)
  }
`);

const emailSchema = z.object({ email: z.string().trim().min(1, "Enter your email") });

export function ForgotPasswordForm() {
  const [, request] = useMutation(RequestReset);
  const [sent, setSent] = useState(false);
  const [errors, setErrors] = useState<ServerError[]>([]);
  const { register, handleSubmit, setError, formState } = useForm<z.infer<typeof emailSchema>>({
    resolver: zodResolver(emailSchema),
    defaultValues: { email: "" },
  });
  const onSubmit = handleSubmit(async ({ email }) => {
    setErrors([]);
    const result = await request({ email });
    if (result.error) {
      setErrors(applyServerErrors(fromCombined(result.error), ["email"], setError));
      return;
    }
    setSent(true);
  });
  if (sent) {
    // The same answer whatever the address: the page never tells who has an account.
    return (
      <div className="flex flex-col gap-3">
        <p role="status">If an account uses that address, a link to set a new password is on its way. It works for one hour.</p>
        <Link className="text-indigo-700 underline" href="/login">
          Back to log in
        </Link>
      </div>
    );
  }
  return (
    <form onSubmit={onSubmit} noValidate className="flex flex-col gap-4">
      <ErrorAlert errors={errors} />
      <TextField label="Email" type="email" autoComplete="email" error={formState.errors.email?.message} {...register("email")} />
      <Button type="submit" disabled={formState.isSubmitting}>
        Send reset link
      </Button>
      <Link className="text-sm text-indigo-700 underline" href="/login">
        Back to log in
      </Link>
    </form>
  );
}

const passwordSchema = z.object({ newPassword: z.string().min(1, "Choose a password") });

export function ResetPasswordForm() {
  const token = useSearchParams().get("token") ?? "";
  const [, reset] = useMutation(ResetPassword);
  const [done, setDone] = useState(false);
  const [errors, setErrors] = useState<ServerError[]>([]);
  const { register, handleSubmit, setError, formState } = useForm<z.infer<typeof passwordSchema>>({
    resolver: zodResolver(passwordSchema),
    defaultValues: { newPassword: "" },
  });
  const onSubmit = handleSubmit(async ({ newPassword }) => {
    setErrors([]);
    const result = await reset({ token, newPassword });
    if (result.error) {
      setErrors(applyServerErrors(fromCombined(result.error), ["newPassword"], setError));
      return;
    }
    setDone(true);
  });
  if (done) {
    return (
      <div className="flex flex-col gap-3">
        <p role="status">Your password is set. Every session was ended: log in again.</p>
        <Link className="text-indigo-700 underline" href="/login">
          Log in
        </Link>
      </div>
    );
  }
  return (
    <form onSubmit={onSubmit} noValidate className="flex flex-col gap-4">
      <ErrorAlert errors={errors} />
      <TextField
        label="New password"
        type="password"
        autoComplete="new-password"
        error={formState.errors.newPassword?.message}
        {...register("newPassword")}
      />
      <Button type="submit" disabled={formState.isSubmitting}>
        Set password
      </Button>
    </form>
  );
}

type VerifyOutcome = { ok: true } | { ok: false; errors: ServerError[] };
// The link's token is single use: one attempt per page load, even if the effect
// runs twice (React's development mode does).
const attempts = new Map<string, Promise<VerifyOutcome>>();

export function VerifyEmailOutcome() {
  const token = useSearchParams().get("token") ?? "";
  const [, verify] = useMutation(VerifyEmail);
  const [outcome, setOutcome] = useState<VerifyOutcome | null>(null);
  useEffect(() => {
    let cancelled = false;
    let attempt = attempts.get(token);
    if (!attempt) {
      attempt = verify({ token }).then(
        (result): VerifyOutcome => (result.error ? { ok: false, errors: fromCombined(result.error) } : { ok: true }),
      );
      attempts.set(token, attempt);
    }
    void attempt.then((result) => {
      if (!cancelled) setOutcome(result);
    });
    return () => {
      cancelled = true;
    };
  }, [token, verify]);
  if (!outcome) return <Loading />;
  return (
    <div className="flex flex-col gap-3">
      {outcome.ok ? <p role="status">Your email address is verified.</p> : <ErrorAlert errors={outcome.errors} />}
      <Link className="text-indigo-700 underline" href="/login">
        Continue
      </Link>
    </div>
  );
}
