"use client";

import { zodResolver } from "@hookform/resolvers/zod";
import Link from "next/link";
import { useRouter, useSearchParams } from "next/navigation";
import { useState } from "react";
import { useForm } from "react-hook-form";
import { z } from "zod";
import { applyServerErrors } from "@/components/forms";
import { Button, ErrorAlert, TextField } from "@/components/ui";
import { register as registerAccount } from "@/lib/auth-client";
import type { ServerError } from "@/lib/errors";
import { useSession } from "@/lib/session";
import { afterLogin } from "./LoginForm";

const schema = z.object({
  email: z.string().trim().min(1, "Enter your email"),
  password: z.string().min(1, "Choose a password"),
  teamName: z.string().trim(),
});
type Values = z.infer<typeof schema>;

export function SignupForm() {
  const router = useRouter();
  const params = useSearchParams();
  const { signedIn } = useSession();
  const [errors, setErrors] = useState<ServerError[]>([]);
  const { register, handleSubmit, setError, formState } = useForm<Values>({
    resolver: zodResolver(schema),
    defaultValues: { email: "", password: "", teamName: "" },
  });

  const onSubmit = handleSubmit(async (values) => {
    setErrors([]);
    const result = await registerAccount(values.email, values.password, values.teamName);
    if (!result.ok) {
      setErrors(applyServerErrors(result.errors, ["email", "password", "teamName"], setError));
      return;
    }
    signedIn(result.session);
    router.replace(afterLogin(params.get("next")));
  });

  return (
    <form onSubmit={onSubmit} noValidate className="flex flex-col gap-4">
      <ErrorAlert errors={errors} />
      <TextField label="Email" type="email" autoComplete="email" error={formState.errors.email?.message} {...register("email")} />
      <TextField
        label="Password"
        type="password"
        autoComplete="new-password"
        error={formState.errors.password?.message}
        {...register("password")}
      />
      <TextField
        label="Team name"
        hint="Optional: a team is created for you either way."
        autoComplete="organization"
        error={formState.errors.teamName?.message}
        {...register("teamName")}
      />
      <Button type="submit" disabled={formState.isSubmitting}>
        Create account
      </Button>
      <p className="text-sm">
        Already have an account?{" "}
        <Link className="text-indigo-700 underline" href="/login">
          Log in
        </Link>
      </p>
    </form>
  );
}
