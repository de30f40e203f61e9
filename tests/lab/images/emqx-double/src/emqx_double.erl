%% emqx-double: a TEST DOUBLE of EMQX 4.4.4 for the mqttaction.emqx lab, not EMQX.
%% The node's main process: reads what emqx_double_config.py decided
%% (data/configs/double.config), starts mnesia membership, the cluster RPC
%% port, the MQTT listeners and, with emqx_management active, the HTTP API.
-module(emqx_double).
-behaviour(gen_server).

-export([start/0, root/0, conf/1, conf/2, seeds/0, version/0, started_at/0,
         is_running/0, plugins/0, plugin_active/1, plugin_conf/2,
         load_plugin/1, unload_plugin/1, say/2, uptime_string/0, accept_loop/2,
         accept_loop/3]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-define(PT(K), {?MODULE, K}).

%% Called by `erl -s emqx_double start`; boot finishes when this returns, so
%% `init:get_status()` says started only once everything listens.
start() ->
    case gen_server:start({local, ?MODULE}, ?MODULE, [], []) of
        {ok, _} -> ok;
        {error, Reason} ->
            say("[error] emqx-double failed to start: ~p", [Reason]),
            erlang:halt(1)
    end.

root() ->
    case init:get_argument(emqx_double_root) of
        {ok, [[Root | _] | _]} -> Root;
        _ -> "/opt/emqx"
    end.

conf(Key) -> conf(Key, undefined).
conf(Key, Default) -> maps:get(Key, persistent_term:get(?PT(conf)), Default).
seeds() -> persistent_term:get(?PT(seeds)).
version() -> persistent_term:get(?PT(version)).
started_at() -> persistent_term:get(?PT(started_at)).

is_running() ->
    whereis(?MODULE) =/= undefined andalso persistent_term:get(?PT(running), false).

%% [{Name, Description, Active}]
plugins() -> gen_server:call(?MODULE, plugins).
plugin_active(Name) ->
    lists:any(fun({N, _, A}) -> N =:= Name andalso A end, plugins()).
plugin_conf(Name, Key) ->
    maps:get(Key, maps:get(Name, persistent_term:get(?PT(plugin_conf)), #{}), undefined).
load_plugin(Name) -> gen_server:call(?MODULE, {load, Name}).
unload_plugin(Name) -> gen_server:call(?MODULE, {unload, Name}).

%% The double's own log lines go to stdout whatever log.level says.
say(Fmt, Args) ->
    io:format(user, "~s emqx-double: " ++ Fmt ++ "~n", [timestamp() | Args]).

timestamp() ->
    calendar:system_time_to_rfc3339(os:system_time(millisecond),
                                    [{unit, millisecond}]).

%% emqx_sys:uptime/0's text: days, hours, minutes, seconds (always plural),
%% leading zero units dropped, the others kept ("1 hours, 0 minutes, 5 seconds").
uptime_string() ->
    Secs = (os:system_time(millisecond) - started_at()) div 1000,
    {D, {H, M, S}} = calendar:seconds_to_daystime(Secs),
    Units = lists:dropwhile(fun({N, _}) -> N =:= 0 end,
                            [{D, " days"}, {H, " hours"}, {M, " minutes"}, {S, " seconds"}]),
    lists:flatten(lists:join(", ", [[integer_to_list(N), U] || {N, U} <- Units])).

%% ---------------------------------------------------------------------------

init([]) ->
    process_flag(trap_exit, true),
    persistent_term:put(?PT(started_at), os:system_time(millisecond)),
    File = filename:join([root(), "data", "configs", "double.config"]),
    {ok, Terms} = file:consult(File),
    {node, Node} = lists:keyfind(node, 1, Terms),
    Node = node(),
    {version, Vsn} = lists:keyfind(version, 1, Terms),
    {conf, Conf} = lists:keyfind(conf, 1, Terms),
    {seeds, Seeds} = lists:keyfind(seeds, 1, Terms),
    persistent_term:put(?PT(version), Vsn),
    persistent_term:put(?PT(conf), maps:from_list(Conf)),
    persistent_term:put(?PT(seeds), Seeds),
    Plugins = [{N, D, A, E} || {plugin, N, D, _En, A, E, _} <- Terms],
    persistent_term:put(?PT(plugin_conf),
                        maps:from_list([{N, maps:from_list(C)}
                                        || {plugin, N, _, _, _, _, C} <- Terms])),
    setup_logger(),
    say("starting node ~s (cookie set, dist port ~p, EMQX ~s stand-in)",
        [node(), emqx_double_epmd:port(node()), Vsn]),
    ok = emqx_double_cluster:start_mnesia(),
    %% The management applications (mnesia table mqtt_app) before anything
    %% else, as ekka creates or waits for its tables at boot.
    ok = emqx_double_mgmt:init_table(),
    ok = emqx_double_mgmt:wait_for_table(),
    {ok, _} = emqx_double_cluster:start_link(),
    {ok, _} = emqx_double_rpc:start_link(),
    {ok, _} = emqx_double_auth:start_link(),
    {ok, _} = emqx_double_mqtt:start_link(),
    [say("plugin ~s loaded", [N]) || {N, _, true, _} <- Plugins],
    State = #{plugins => Plugins, http => undefined},
    State1 = maybe_http(State),
    persistent_term:put(?PT(running), true),
    say("node ~s is started", [node()]),
    {ok, State1}.

%% emqx_management started (boot or `plugins load`): the default
%% application, then the HTTP API, as emqx_mgmt_app:start/2; stopped: the API.
maybe_http(State = #{plugins := Plugins, http := Http}) ->
    Active = lists:keyfind(emqx_management, 1, Plugins),
    case {Active, Http} of
        {{_, _, true, _}, undefined} ->
            ok = emqx_double_mgmt:add_default_app(),
            {ok, Pid} = emqx_double_http:start_link(),
            State#{http => Pid};
        {{_, _, false, _}, Pid} when is_pid(Pid) ->
            unlink(Pid),
            exit(Pid, shutdown),
            State#{http => undefined};
        _ -> State
    end.

handle_call(plugins, _From, State = #{plugins := Plugins}) ->
    {reply, [{N, D, A} || {N, D, A, _} <- Plugins], State};
handle_call({load, Name}, _From, State = #{plugins := Plugins}) ->
    case lists:keyfind(Name, 1, Plugins) of
        false -> {reply, {error, not_found}, State};
        {_, _, true, _} -> {reply, {error, already_started}, State};
        {_, _, _, Err} when Err =/= undefined -> {reply, {error, Err}, State};
        {N, D, false, E} ->
            write_loaded(Name, true),
            P1 = lists:keyreplace(N, 1, Plugins, {N, D, true, E}),
            S = maybe_http(State#{plugins := P1}),
            {reply, ok, S}
    end;
handle_call({unload, Name}, _From, State = #{plugins := Plugins}) ->
    case lists:keyfind(Name, 1, Plugins) of
        {N, D, true, E} ->
            write_loaded(Name, false),
            P1 = lists:keyreplace(N, 1, Plugins, {N, D, false, E}),
            S = maybe_http(State#{plugins := P1}),
            {reply, ok, S};
        _ -> {reply, {error, not_started}, State}
    end;
handle_call(_, _From, State) -> {reply, {error, unknown}, State}.

handle_cast(_, State) -> {noreply, State}.

handle_info({'EXIT', Pid, Reason}, State) when Reason =/= normal ->
    say("[error] process ~p stopped: ~p; the node stops", [Pid, Reason]),
    erlang:halt(1),
    {noreply, State};
handle_info(_, State) -> {noreply, State}.

terminate(_, _) -> ok.

%% data/loaded_plugins as 4.4.4 writes it: one `{Name, Bool}.` per line.
write_loaded(Name, Bool) ->
    File = filename:join([root(), "data", "loaded_plugins"]),
    Old = case file:consult(File) of {ok, T} -> T; _ -> [] end,
    Norm = [case E of {N, B} -> {N, B}; N when is_atom(N) -> {N, true} end || E <- Old],
    New = case lists:keymember(Name, 1, Norm) of
              true -> lists:keyreplace(Name, 1, Norm, {Name, Bool});
              false -> Norm ++ [{Name, Bool}]
          end,
    file:write_file(File, [io_lib:format("~p.~n", [E]) || E <- New]).

setup_logger() ->
    Level = list_to_atom(conf("log.level", "warning")),
    logger:set_primary_config(level, Level),
    case conf("log.to", "console") of
        "console" -> ok;
        To ->
            Dir = filename:absname(conf("log.dir", "log"), root()),
            Path = filename:join(Dir, conf("log.file", "emqx.log")),
            logger:add_handler(emqx_double_file, logger_std_h,
                               #{config => #{file => Path}}),
            To =:= "file" andalso logger:remove_handler(default),
            ok
    end.

%% Accept connections on listen socket L forever; each one is handled by
%% Handler(Socket) in a process of its own.
accept_loop(L, Handler) -> accept_loop(tcp, L, Handler).

%% The same over TCP (tcp) or TLS (ssl). The TLS handshake runs in the
%% connection's own process: a slow or failed one disturbs nobody else.
accept_loop(tcp, L, Handler) ->
    {ok, S} = gen_tcp:accept(L),
    Pid = spawn(fun() -> receive go -> Handler(S) end end),
    ok = gen_tcp:controlling_process(S, Pid),
    Pid ! go,
    accept_loop(tcp, L, Handler);
accept_loop(ssl, L, Handler) ->
    case ssl:transport_accept(L) of
        {ok, T} ->
            Pid = spawn(fun() ->
                                receive go -> ok after 5000 -> exit(normal) end,
                                case ssl:handshake(T, 10000) of
                                    {ok, S} -> Handler(S);
                                    {error, _} -> ssl:close(T)
                                end
                        end),
            case ssl:controlling_process(T, Pid) of
                ok -> Pid ! go;
                _ -> ssl:close(T), exit(Pid, kill)
            end,
            accept_loop(ssl, L, Handler);
        {error, closed} -> exit({accept, closed});
        {error, _} -> accept_loop(ssl, L, Handler)
    end.
